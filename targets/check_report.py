"""What a target's pre-flight check found: per node, which rule it breaks and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CheckIssue", "CheckReport"]


@dataclass(frozen=True)
class CheckIssue:
    node: str
    op: str
    rule: str
    detail: str
    fix: str = ""  # what the user can do about it, when there is something (an option, another target)


@dataclass(frozen=True)
class CheckReport:
    target: str
    nodes: int
    supported_nodes: int
    issues: tuple[CheckIssue, ...]
    notes: tuple[str, ...] = ()  # what runs but falls back (e.g. NPU → CPU), estimates; never a refusal
    inputs: tuple[dict[str, Any], ...] = ()  # what intake inferred per input (`edgeml check`): InputLayout.to_dict

    @property
    def ok(self) -> bool:
        return not self.issues

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ok": self.ok,
            "nodes": self.nodes,
            "supported_nodes": self.supported_nodes,
            "issues": [vars(i) for i in self.issues],
            "notes": list(self.notes),
            "inputs": list(self.inputs),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckReport:
        issues = tuple(CheckIssue(**i) for i in d["issues"])
        notes, inputs = tuple(d.get("notes", ())), tuple(d.get("inputs", ()))
        return cls(d["target"], d["nodes"], d["supported_nodes"], issues, notes, inputs)

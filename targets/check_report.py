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


@dataclass(frozen=True)
class CheckReport:
    target: str
    nodes: int
    supported_nodes: int
    issues: tuple[CheckIssue, ...]

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
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckReport:
        issues = tuple(CheckIssue(**i) for i in d["issues"])
        return cls(d["target"], d["nodes"], d["supported_nodes"], issues)

"""A target's compile plan: preparation passes shared by all candidates, then each candidate's own passes
and, where the runtime does not load ONNX, the lowering that produces its files. The compiler defines it, as it
defines `Pass` and `Lowering`; a target (edgeml/targets/target.py) fills it in."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeml.compiler.lowering import Lowering
from edgeml.compiler.passes.base import Pass

__all__ = ["CandidatePlan", "Plan"]


@dataclass(frozen=True)
class CandidatePlan:
    passes: list[Pass] = field(default_factory=list)
    lowering: Lowering | None = None


@dataclass(frozen=True)
class Plan:
    prepare: list[Pass]
    candidates: dict[str, CandidatePlan]
    notes: tuple[str, ...] = ()

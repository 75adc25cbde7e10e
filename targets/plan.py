"""A target's compile plan: preparation passes shared by all candidates, then a pass list per candidate."""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.compiler.passes.base import Pass

__all__ = ["Plan"]


@dataclass(frozen=True)
class Plan:
    prepare: list[Pass]
    candidates: dict[str, list[Pass]]
    notes: tuple[str, ...] = ()

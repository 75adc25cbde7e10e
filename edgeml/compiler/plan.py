"""A target's compile plan: preparation passes shared by all candidates, then each candidate's own passes
and, where the runtime does not load ONNX, the lowering that produces its files.

A target (edgeml/targets/target.py) hands the compiler a `Plan`, and, where it offers the accuracy-aware
`int8-mixed` candidate, a `MixedPrecision`: how to name its INT8 layers and how to keep some in float. The
compiler defines these types, as it defines `Pass` and `Lowering`; the targets fill them in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edgeml.compiler.lowering import Lowering
from edgeml.compiler.passes.base import Pass

if TYPE_CHECKING:
    from edgeml.compiler.build_candidate import Built
    from edgeml.compiler.quantized_layers import QuantizedLayer

__all__ = ["CandidatePlan", "MixedPrecision", "Plan"]


@dataclass(frozen=True)
class CandidatePlan:
    passes: list[Pass] = field(default_factory=list)
    lowering: Lowering | None = None


@dataclass(frozen=True)
class Plan:
    prepare: list[Pass]
    candidates: dict[str, CandidatePlan]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MixedPrecision:
    """A target's `int8-mixed` capability, which the search (edgeml/compiler/accuracy_aware.py) drives.

    base          the all-INT8 candidate a mix starts from
    layers        (base built, prepared ONNX) → its INT8 layers, by the names `plan` takes, in the order the
                  search cuts them to its cap where no per-layer report orders them, each with its weight count
    plan          (base candidate's plan, layers to keep) → that plan with those layers left in float
    choose_base   optional, where a target mixes from different candidates on different graphs: this
                  compile's candidates → the one a mix starts from
    max_ranked    optional: base → how many layers the search measures one by one (None: the search's default)
    """

    base: str
    layers: Callable[[Built, bytes], list[QuantizedLayer]]
    plan: Callable[[CandidatePlan, tuple[str, ...]], CandidatePlan]
    choose_base: Callable[[dict[str, CandidatePlan]], str] | None = None
    max_ranked: Callable[[str], int | None] | None = None

    def base_for(self, candidates: dict[str, CandidatePlan]) -> str:
        """The candidate a mix starts from in this compile's plan."""
        return self.choose_base(candidates) if self.choose_base is not None else self.base

    def ranked_for(self, base: str) -> int | None:
        return self.max_ranked(base) if self.max_ranked is not None else None

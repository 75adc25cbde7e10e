"""A target's `int8-mixed` capability: the all-INT8 candidate a mix starts from, its INT8 layers by name, and that
candidate's plan with named layers kept in float. The compiler's search (accuracy_aware.py) drives it; a target
(edgeml/targets/target.py) offers one where it can keep layers in float."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeml.compiler.plan import CandidatePlan

if TYPE_CHECKING:
    from edgeml.compiler.build_candidate import Built
    from edgeml.compiler.quantized_layers import QuantizedLayer

__all__ = ["MixedPrecision"]


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

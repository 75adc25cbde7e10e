"""The accuracy-aware `int8-mixed` candidate for the ONNX Runtime targets (cpu-ort, gpu-ort): the target's
static QDQ INT8 plan with named layers (ONNX node names) excluded from quantization, so they stay float.

A target offers it by naming its all-INT8 candidate `MIXED_BASE` and exporting these two functions; the
compiler's search (edgeml/compiler/accuracy_aware.py) ranks the layers and picks the fewest to keep, then swaps
them for cheaper ones (fewer weights) where those meet the budget too.
"""

from __future__ import annotations

from dataclasses import replace

from edgeml.compiler.build_candidate import Built
from edgeml.compiler.passes.quantize_static import QuantizeStatic
from edgeml.compiler.plan import CandidatePlan
from edgeml.compiler.quantized_layers import QuantizedLayer, quantized_layers

__all__ = ["mixed_layers", "mixed_plan"]


def mixed_plan(base: CandidatePlan, keep_float: tuple[str, ...]) -> CandidatePlan:
    """The static INT8 plan `base` with the layers `keep_float` (node names) left in float."""
    passes = [
        QuantizeStatic(replace(p.config, exclude_nodes=tuple(keep_float))) if isinstance(p, QuantizeStatic) else p
        for p in base.passes
    ]
    return replace(base, passes=passes)


def mixed_layers(base: Built, prepared: bytes) -> list[QuantizedLayer]:
    """The layers of the QDQ model, named as in the float model `prepared`."""
    import onnx

    return quantized_layers(onnx.load_model_from_string(base.onnx.data), onnx.load_model_from_string(prepared))

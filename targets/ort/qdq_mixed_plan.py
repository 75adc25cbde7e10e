"""The accuracy-aware `int8-mixed` candidate for the ONNX Runtime targets (cpu-ort, gpu-ort): the target's
static QDQ INT8 plan with named layers (ONNX node names) excluded from quantization, so they stay float. The
layers offered include those without weights (a Concat, Sigmoid or Add that rounds its output anew) and the
float head, the detection post-processing after the last weighted layer, as one group.

A target offers it by naming its all-INT8 candidate `MIXED_BASE` and exporting these two functions; the
compiler's search (edgeml/compiler/accuracy_aware.py) ranks the layers and picks the fewest to keep, then swaps
them for cheaper ones (fewer weights) where those meet the budget too.
"""

from __future__ import annotations

from dataclasses import replace

from edgeml.compiler.build_candidate import Built
from edgeml.compiler.float_head import float_head_layer
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
    """The layers of the QDQ model, named as in the float model `prepared`, and its float head as one group
    (edgeml/compiler/float_head.py): the weightless ops after the last weighted layer, which `exclude_nodes`
    keeps in float like any layer."""
    import onnx

    float_model = onnx.load_model_from_string(prepared)
    layers = quantized_layers(onnx.load_model_from_string(base.onnx.data), float_model)
    head = float_head_layer(float_model, {la.name for la in layers})
    return layers + ([head] if head is not None and _rounds(head, layers) else [])


def _rounds(head: QuantizedLayer, layers: list[QuantizedLayer]) -> bool:
    """Some op of the head runs in INT8 or rounds its output: keeping it in float changes something."""
    return any(la.adjustable for la in layers if la.name in head.members)

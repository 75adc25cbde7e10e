"""The accuracy-aware `int8-mixed` candidate of the OpenVINO targets: their NNCF `int8` lowering with named
layers kept in float (NNCF's ignored scope), and the INT8 layers an NNCF IR has, to rank and choose from.

The search itself is edgeml's (edgeml/compiler/accuracy_aware.py), the same as cpu-ort's, rather than
`nncf.quantize_with_accuracy_control`: it ranks layers by the output SQNR each recovers in float, judges every
mix on edgeml's own budget and evaluation, and names the layers with their cost when no mix meets the budget,
identically on every target. NNCF's loop ranks quantizer groups by its own metric and reports no per-layer
cost; on digits at the floors of benchmarks/bench_accuracy.py it reverted every layer (a float model).
"""

from __future__ import annotations

from dataclasses import replace

from edgeml.compiler.build_candidate import Built
from edgeml.compiler.float_head import float_head_layer
from edgeml.compiler.ir_quantized_layers import ir_onnx_nodes, ir_quantized_layers
from edgeml.compiler.lowerings import QuantizeWithNNCF
from edgeml.compiler.lowerings.openvino_ir import IR_BIN, IR_XML
from edgeml.compiler.plan import CandidatePlan
from edgeml.compiler.quantized_layers import QuantizedLayer

__all__ = ["MIXED_BASE", "mixed_layers", "mixed_plan"]

MIXED_BASE = "int8"  # the candidate a mix starts from: all-INT8 NNCF


def mixed_plan(base: CandidatePlan, keep_float: tuple[str, ...]) -> CandidatePlan:
    """The `int8` plan with the layers `keep_float` (ONNX node names) left in float."""
    if not isinstance(base.lowering, QuantizeWithNNCF):
        raise TypeError(f"{MIXED_BASE} is not an NNCF lowering: {base.lowering!r}")
    return replace(base, lowering=QuantizeWithNNCF(replace(base.lowering.config, ignored=tuple(keep_float))))


def mixed_layers(base: Built, prepared: bytes) -> list[QuantizedLayer]:
    """The INT8 layers of the all-INT8 IR, named by their ONNX nodes in `prepared` (the lowering's input), and
    the float head as one group (edgeml/compiler/float_head.py) where NNCF rounds some of it: NNCF treats a
    Concat as quantization-agnostic and unifies its inputs' scales, so a head's Concat is no layer of its own."""
    import onnx

    float_model = onnx.load_model_from_string(prepared)
    layers = ir_quantized_layers(base.files[IR_XML], base.files[IR_BIN], float_model)
    named, rounding = ir_onnx_nodes(base.files[IR_XML], base.files[IR_BIN], float_model)
    head = float_head_layer(float_model, named)
    return layers + ([head] if head is not None and rounding & set(head.members) else [])

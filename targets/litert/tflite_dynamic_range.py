"""ONNX graph → the TFLite operators that dynamic-range INT8 (ai-edge-quantizer `dynamic_wi8_afp32`) gives int8
weights, and the share of the model's multiply-accumulates they carry; every other operator stays float32.

The rule the int8-dynamic lowering applies, read before any conversion: an operator gets int8 weights when
ai-edge-quantizer's default policy lists it for `dynamic_wi8_afp32` (DYNAMIC_WEIGHT_OPS, tests pin it to the
installed quantizer) and its weight is a constant. tflite-cpu's check reports it and its plan skips the
candidate when nothing would be quantized (it would be the fp32 model again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeml.targets.litert.tflite_ops import TfliteOp, tflite_ops

__all__ = ["DYNAMIC_WEIGHT_OPS", "DynamicRange", "dynamic_range"]

DYNAMIC_WEIGHT_OPS = frozenset(
    {"BATCH_MATMUL", "CONV_2D", "CONV_2D_TRANSPOSE", "DEPTHWISE_CONV_2D", "EMBEDDING_LOOKUP", "FULLY_CONNECTED"}
)


@dataclass(frozen=True)
class DynamicRange:
    quantized: tuple[TfliteOp, ...]  # int8 weights, activations quantized at run time
    float_ops: tuple[TfliteOp, ...]  # every other TFLite operator: float32

    @property
    def macs_share(self) -> float:
        total = sum(op.macs for op in (*self.quantized, *self.float_ops))
        return sum(op.macs for op in self.quantized) / total if total else 0.0

    def describe(self) -> str:
        if not self.quantized:
            return (
                "int8-dynamic not tried: no operator with constant weights that ai-edge-quantizer's "
                "dynamic_wi8_afp32 quantizes (it would be the fp32 model)"
            )
        counts: dict[str, int] = {}
        for op in self.quantized:
            counts[op.tflite_op] = counts.get(op.tflite_op, 0) + 1
        kinds = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in sorted(counts.items()))
        return (
            f"int8-dynamic (ai-edge-quantizer dynamic_wi8_afp32): int8 weights on {len(self.quantized)} of "
            f"{len(self.quantized) + len(self.float_ops)} TFLite operators ({kinds}; {self.macs_share:.1%} of the "
            "MACs), activations float32 quantized at run time; the other operators run in float32"
        )


def dynamic_range(model: Any) -> DynamicRange:
    """`model`: a parsed ONNX ModelProto, as the check and the plan receive it."""
    constants = {i.name for i in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    ops = [op for op in tflite_ops(model) if op.tflite_op]  # NOTE: folded and fused nodes are no operator
    quantized = tuple(op for op in ops if op.tflite_op in DYNAMIC_WEIGHT_OPS and _weight(op) in constants)
    return DynamicRange(quantized, tuple(op for op in ops if op not in quantized))


def _weight(op: TfliteOp) -> str | None:
    return op.inputs[1] if len(op.inputs) > 1 else None

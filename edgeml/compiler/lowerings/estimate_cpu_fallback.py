"""The operators Vela left on the CPU → their multiply-accumulates and a stated estimate of the Cortex-M's time.

Vela estimates the NPU only: its cycle count and inference time leave out every operator it places on the
CPU. This counts what those operators compute, from the shapes in Vela's output model, on Vela's own
convention (its per-layer report counts a convolution's or matrix product's multiply-accumulates, and one
per output element for element-wise arithmetic; data movement counts none), and turns it into cycles with
the coarse per-operation costs in COST below, at the NPU's clock (the host Cortex-M of an Ethos-U55/U65
subsystem usually runs at it). The figures are an order of magnitude, stated as such in the report: the
true CPU time depends on the core (Cortex-M55 with Helium, M85, M7), its caches and the kernel library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgeml.compiler.lowerings.tflite_operators import TfliteOperator

__all__ = ["COST", "CpuEstimate", "estimate_cpu_fallback", "operator_macs"]

# cycles per multiply-accumulate (matrix operators) or per output element (everything else) on the Cortex-M,
# by the operator's arithmetic: int8 matrix kernels (CMSIS-NN), int8 element-wise, and float32 (TFLite Micro's
# reference kernels on a scalar FPU; QUANTIZE/DEQUANTIZE convert every element to or from float).
COST = {"int8_matrix": 1.0, "int8_elementwise": 2.0, "float32": 8.0, "convert": 8.0}
METHOD = (
    "CPU part estimated by edgeml, not by Vela: each CPU operator's multiply-accumulates (one per output element "
    "for element-wise operators) × cycles per operation on the Cortex-M ({costs}), at the NPU clock of "
    "{clock:g} MHz; an order of magnitude, not a measurement — time it on the device"
)
_MATRIX = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"})
_MOVES = frozenset(
    {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "CONCATENATION", "PACK", "UNPACK", "SPLIT", "SPLIT_V",
     "STRIDED_SLICE", "SLICE", "GATHER", "PAD", "PADV2", "TILE"}
)  # fmt: skip


@dataclass(frozen=True)
class CpuEstimate:
    macs: int
    cycles: int
    clock_mhz: float
    per_operator: tuple[tuple[str, int, int], ...]  # (output tensor, MACs, cycles)

    @property
    def ms(self) -> float:
        return self.cycles / (self.clock_mhz * 1e3) if self.clock_mhz else 0.0

    def method(self) -> str:
        costs = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in COST.items())
        return METHOD.format(costs=costs, clock=self.clock_mhz)


def estimate_cpu_fallback(ops: list[TfliteOperator], clock_mhz: float) -> CpuEstimate:
    """`ops`: the builtin (CPU) operators of Vela's output model."""
    rows = [(op.outputs[0] if op.outputs else op.type, operator_macs(op), _cycles(op)) for op in ops]
    return CpuEstimate(sum(r[1] for r in rows), sum(r[2] for r in rows), clock_mhz, tuple(rows))


def operator_macs(op: TfliteOperator) -> int:
    """Multiply-accumulates of one operator, on Vela's per-layer convention."""
    out = math.prod(op.output_shapes[0]) if op.output_shapes else 0
    if op.type in _MOVES or op.type in ("QUANTIZE", "DEQUANTIZE"):
        return 0
    weights = op.input_shapes[1] if len(op.input_shapes) > 1 else ()
    if op.type in ("CONV_2D", "TRANSPOSE_CONV") and len(weights) == 4:
        return out * math.prod(weights[1:])  # weights OHWI: one MAC per kernel tap and input channel
    if op.type == "DEPTHWISE_CONV_2D" and len(weights) == 4:
        return out * weights[1] * weights[2]
    if op.type == "FULLY_CONNECTED" and len(weights) == 2:
        return out * weights[1]
    if op.type == "BATCH_MATMUL" and op.input_shapes and op.input_shapes[0]:
        return out * op.input_shapes[0][-1]
    return out


def _cycles(op: TfliteOperator) -> int:
    elements = math.prod(op.output_shapes[0]) if op.output_shapes else 0
    if op.type in ("QUANTIZE", "DEQUANTIZE"):
        return round(elements * COST["convert"])
    if op.type in _MOVES:
        return elements  # one cycle per element copied
    floating = "FLOAT32" in op.output_dtypes or "FLOAT32" in op.input_dtypes[:1]
    if floating:
        return round(operator_macs(op) * COST["float32"])
    kind = "int8_matrix" if op.type in _MATRIX else "int8_elementwise"
    return round(operator_macs(op) * COST[kind])

"""ONNX graph + Ethos-U accelerator → where Vela will place each operator (NPU or CPU, and the rule), and the
share of the model's multiply-accumulates on the NPU. A prediction in milliseconds, before any conversion.

The rules are Vela's own where Vela exposes them: the operator types come from Vela's TFLite constraint
table for the accelerator (`ethosu.regor.tflite_operator_constraints`, the table behind
`vela --supported-ops-report`), and each shape rule below quotes the Vela constraint it applies. Two facts
of the conversion complete it: what each ONNX op becomes (../litert/tflite_ops.py), and that the PT2E quantizer
(litert-torch's, plus edgeml's annotations for the activations an NPU runs) leaves ops it has no int8 pattern
for in float, which Vela can only place on the CPU.
The compile then runs Vela itself; its report in the artifact is authoritative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgeml.compiler.optional_dependency import import_optional
from edgeml.targets.litert.tflite_ops import UNMAPPED, TfliteOp, tflite_ops

__all__ = ["Placement", "predict_placement"]

# TFLite ops that edgeml's PT2E quantizer produces in int8: litert-torch 0.10's patterns (conv/linear/add/mul/cat/
# pooling, fixed-qparam sigmoid/softmax, the shape ops that share their input's observer) and the operators
# edgeml annotates on top of them (edgeml/compiler/lowerings/annotate_npu_operators.py; PRELU becomes
# MINIMUM, MUL and ADD, decompose_prelu.py).
PT2E_INT8_OPS = frozenset(
    {
        "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "ADD", "MUL", "CONCATENATION",
        "LOGISTIC", "SOFTMAX", "RELU", "RELU6", "MEAN", "TRANSPOSE", "RESHAPE", "STRIDED_SLICE",
        "PRELU", "LEAKY_RELU", "HARD_SWISH", "TANH", "SUB", "AVERAGE_POOL_2D",
    }
)  # fmt: skip
# …of which these are int8 only when their input is (a float input keeps them float): they share their input's
# quantization, or are annotated only after an int8 operator
SHARES_INPUT_QUANTIZATION = frozenset(
    {
        "RELU", "RELU6", "MEAN", "TRANSPOSE", "RESHAPE", "STRIDED_SLICE", "LOGISTIC", "SOFTMAX",
        "PRELU", "LEAKY_RELU", "HARD_SWISH", "TANH", "SUB", "AVERAGE_POOL_2D",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Placement:
    accelerator: str
    npu: tuple[TfliteOp, ...]
    cpu: tuple[tuple[TfliteOp, str], ...]  # (op, the rule that keeps it off the NPU)
    unmapped: tuple[TfliteOp, ...]  # no TFLite builtin: neither NPU nor CPU can run it
    npu_macs: int
    total_macs: int

    @property
    def npu_mac_share(self) -> float:
        return 1.0 if not self.total_macs else self.npu_macs / self.total_macs

    def describe(self) -> str:
        fallback = "; ".join(f"{op.node} → {op.tflite_op}: {rule}" for op, rule in self.cpu) or "none"
        return (
            f"pre-flight for {self.accelerator}: {len(self.npu)} of {len(self.npu) + len(self.cpu)} operators "
            f"predicted on the NPU, {self.npu_mac_share:.1%} of {self.total_macs / 1e6:.3g} M MACs; "
            f"CPU fallback: {fallback}"
        )


def predict_placement(model: Any, accelerator: str) -> Placement:
    regor = import_optional("ethosu.regor", "ethos-u", f"target {accelerator}")
    constraints = regor.tflite_operator_constraints(_regor_arch(accelerator))
    ops = tflite_ops(model)
    floats = _float_values(ops, {i.name for i in model.graph.initializer})
    placed = [(op, _rule(op, constraints, floats)) for op in ops if op.tflite_op]
    npu = tuple(op for op, rule in placed if rule is None)
    cpu = tuple((op, rule) for op, rule in placed if rule is not None)
    unmapped = tuple(op for op in ops if op.tflite_op == UNMAPPED)
    total = sum(op.macs for op in ops)
    return Placement(accelerator, npu, cpu, unmapped, sum(op.macs for op in npu), total)


def _regor_arch(accelerator: str) -> str:
    """ethos-u55-128 → EthosU55 (Vela's constraint tables are per NPU generation)."""
    return "EthosU" + accelerator.removeprefix("ethos-u").split("-")[0]


def _float_values(ops: list[TfliteOp], constants: set[str]) -> set[str]:
    """ONNX values the INT8 model computes in float: outputs of ops PT2E does not quantize, and of the ops
    that share their input's quantization (or are fused into the op before them) when that input is float."""
    floats: set[str] = set()
    for op in ops:
        inherits = op.tflite_op is None or op.tflite_op in SHARES_INPUT_QUANTIZATION
        from_float = any(i in floats for i in op.inputs if i not in constants)
        if (op.tflite_op and op.tflite_op not in PT2E_INT8_OPS) or (inherits and from_float):
            floats.update(op.outputs)
    return floats


def _rule(op: TfliteOp, constraints: dict[str, list[str]], floats: set[str]) -> str | None:
    """None when Vela places `op` on the NPU, else the rule that keeps it on the CPU."""
    kind = op.tflite_op or ""
    if kind not in constraints:
        return f"{kind} is not among the operators Vela places on the NPU (a CPU-only operator)"
    if any(o in floats for o in op.outputs):
        why = "leaves it" if kind not in PT2E_INT8_OPS else "keeps it (its input is float)"
        return f"the PT2E quantizer {why} in float; {_quote(constraints[kind], 'Feature-map dataTypes')}"
    return _shape_rule(op, constraints[kind])


def _shape_rule(op: TfliteOp, texts: list[str]) -> str | None:
    kind, a = op.tflite_op, op.attrs
    strides, dilations = a.get("strides", [1, 1]), a.get("dilations", [1, 1])
    valid = not any(a.get("pads", [0]))
    if kind == "MEAN" and _depth_reduction(op):
        return _quote(texts, "Reduction over depth")
    if kind == "MEAN" and any(op.ifm[i] >= 4096 for i in a.get("axes_nhwc", ()) if i < len(op.ifm)):
        return _quote(texts, "Reduced axis must be less than")
    if kind in ("CONV_2D", "MAX_POOL_2D") and max(strides) > 3 and (max(dilations) != 1 or not valid):
        return _quote(texts, "Stride>3")
    if kind == "DEPTHWISE_CONV_2D" and max(strides) > 3:
        return _quote(texts, "Kernel stride must be in the range")
    kernel = a.get("kernel_shape", [1, 1])
    if kind == "MAX_POOL_2D" and (math.prod(kernel) > 256 * 256 or kernel[0] > 256):
        return _quote(texts, "kernel product")
    if kind == "SOFTMAX" and len(op.ifm) == 4 and op.ifm[1] * op.ifm[2] >= 65536:
        return _quote(texts, "The product of IFM width and height")
    return None


def _depth_reduction(op: TfliteOp) -> bool:
    """A MEAN over C (axis 3 of NHWC) that Vela runs only when one of H, W, C is 1."""
    axes = op.attrs.get("axes_nhwc", ())
    return len(op.ifm) == 4 and 3 in axes and 1 not in op.ifm[1:]


def _quote(texts: list[str], start: str) -> str:
    found = next((t for t in texts if t.strip().startswith(start)), start)
    return "Vela: " + " ".join(found.split())

"""Can an Ethos-U system run this model, and what falls back to its CPU? Shared by the Ethos-U targets.

Refused (issues): ONNX nodes that become no TFLite builtin operator, which neither the NPU nor the Cortex-M
runs. Reported (notes): Vela's predicted placement and the NPU's share of the MACs (placement.py);
a CPU fallback still runs, so it refuses only with `require_full_offload`, when the plan is made.
"""

from __future__ import annotations

from typing import Any

from edgeml.targets.check_report import CheckIssue, CheckReport
from edgeml.targets.ethos_u.placement import predict_placement
from edgeml.targets.target_spec import TargetSpec

__all__ = ["check"]


def check(data: bytes, model: Any, spec: TargetSpec, recipe: Any = None) -> CheckReport:
    """`data` is the serialized ONNX model, `model` the same parsed; `spec.device` is Vela's accelerator."""
    placement = predict_placement(model, spec.device)
    issues = tuple(
        CheckIssue(
            op.node,
            op.onnx_op,
            "tflite-builtin",
            f"ONNX {op.onnx_op} becomes no TFLite builtin operator, so neither the {spec.device} NPU nor its CPU "
            "can run it (target cpu-ort runs it)",
        )
        for op in placement.unmapped
    )
    total = len(model.graph.node)
    return CheckReport(spec.id, total, total - len({i.node for i in issues}), issues, (placement.describe(),))

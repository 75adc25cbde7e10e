"""Can ONNX Runtime's CPU provider run this model? Op domains first, then ONNX Runtime itself loads it.

Loading is the rule the lowering depends on (the artifact is exactly this model, optimized), so the check
and the lowering cannot disagree: whatever ORT refuses here, it would refuse on the device.
"""

from __future__ import annotations

from typing import Any

from edgeml.targets.check_report import CheckIssue, CheckReport
from edgeml.targets.target_spec import TargetSpec

__all__ = ["check"]


def check(data: bytes, model: Any, spec: TargetSpec, recipe: Any = None) -> CheckReport:
    """`data` is the serialized ONNX model, `model` the same parsed (both at hand where this is called)."""
    issues = [
        CheckIssue(
            node.name or node.op_type,
            f"{node.domain}::{node.op_type}",
            "op-domain",
            f"domain {node.domain!r} has no kernels in ONNX Runtime",
        )
        for node in model.graph.node
        if node.domain not in spec.op_domains
    ]
    if not issues:
        issues += _load_with_ort(data)
    total = len(model.graph.node)
    return CheckReport(spec.id, total, total - len({i.node for i in issues}), tuple(issues))


def _load_with_ort(data: bytes) -> list[CheckIssue]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    try:
        ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/NotImplemented/InvalidGraph types
        message = str(exc).splitlines()[0][:400]
        return [CheckIssue("(model)", "", "runtime-load", f"ONNX Runtime {ort.__version__} refused it: {message}")]
    return []

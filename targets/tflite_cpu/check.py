"""Can LiteRT run this model? Every ONNX node must become a TFLite builtin operator through litert-torch.

The rule is the table in ../litert/tflite_ops.py (ONNX op → the TFLite operator the lowering produces); a node
without one (a custom-domain op, control flow, an op TFLite has no builtin for) is named with the target
that runs it instead. Where the recipe lets int8-dynamic be built, the report also says which operators get
int8 weights and which stay float32 (../litert/tflite_dynamic_range.py, the rule the plan and the lowering follow).
"""

from __future__ import annotations

from typing import Any

from edgeml.targets.check_report import CheckIssue, CheckReport
from edgeml.targets.litert.tflite_dynamic_range import dynamic_range
from edgeml.targets.litert.tflite_ops import UNMAPPED, tflite_ops
from edgeml.targets.target_spec import TargetSpec

__all__ = ["check"]


def check(data: bytes, model: Any, spec: TargetSpec, recipe: Any = None) -> CheckReport:
    """`data` is the serialized ONNX model, `model` the same parsed (both at hand where this is called)."""
    issues = tuple(
        CheckIssue(
            op.node,
            op.onnx_op,
            "tflite-builtin",
            f"ONNX {op.onnx_op} has no TFLite builtin operator in litert-torch's output, so LiteRT cannot run "
            "it (target cpu-ort runs it)",
        )
        for op in tflite_ops(model)
        if op.tflite_op == UNMAPPED
    )
    precision = getattr(recipe, "precision", spec.recipe_defaults.get("precision", "auto"))
    notes = (dynamic_range(model).describe(),) if precision in ("auto", "int8-dynamic") else ()
    total = len(model.graph.node)
    return CheckReport(spec.id, total, total - len({i.node for i in issues}), issues, notes)

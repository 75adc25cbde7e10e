"""Can OpenVINO's NPU plugin run this model? Two rules, both the lowering's own: every input shape is static
(fixed by the model or by the `shape` option: one issue per dynamic dim, naming the input, the dim and the
option that fixes it), and the plugin implements every op of the converted, reshaped model (`query_model`,
no compiling; the CPU plugin answers where this host has no NPU, and each issue says so).
"""

from __future__ import annotations

from typing import Any

from edgeml.compiler.intake import onnx_signature
from edgeml.targets.check_report import CheckReport
from edgeml.targets.graph_kind import walk_nodes
from edgeml.targets.npu_openvino.recipe import Recipe
from edgeml.targets.openvino.query_openvino import query_openvino
from edgeml.targets.openvino.static_shapes import static_shapes
from edgeml.targets.target_spec import TargetSpec

__all__ = ["check"]


def check(data: bytes, model: Any, spec: TargetSpec, recipe: Recipe | None = None) -> CheckReport:
    """`data` is the serialized ONNX model, `model` the same parsed; `recipe` carries the `shape` option.

    Without a recipe (the compiler does not pass one yet) the shape rule is left to `plan`, which applies
    the same `static_shapes` with the user's options before anything is built.
    """
    shapes, issues = static_shapes(onnx_signature(model), recipe.shape, spec.id) if recipe else ((), [])
    ops, op_issues = query_openvino(data, shapes, spec.device.upper(), spec.id)
    total = ops or len(walk_nodes(model.graph))  # NOTE: conversion failed: count the ONNX nodes, bodies too
    supported = max(0, total - len({i.node for i in op_issues}))
    return CheckReport(spec.id, total, supported, (*issues, *op_issues))

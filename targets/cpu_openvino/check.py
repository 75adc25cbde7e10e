"""Can OpenVINO's CPU plugin run this model? Its ONNX frontend converts it and the plugin's `query_model`
answers per op, without compiling anything.

The conversion is the lowering's own (`read_onnx`), so the check and the lowering cannot disagree: whatever
OpenVINO refuses here, the lowering would fail on, and the device's CPU plugin would refuse.
"""

from __future__ import annotations

from typing import Any

from edgeml.targets.check_report import CheckReport
from edgeml.targets.graph_kind import walk_nodes
from edgeml.targets.openvino.query_openvino import query_openvino
from edgeml.targets.target_spec import TargetSpec

__all__ = ["check"]


def check(data: bytes, model: Any, spec: TargetSpec, recipe: Any = None) -> CheckReport:
    """`data` is the serialized ONNX model, `model` the same parsed (both at hand where this is called)."""
    ops, issues = query_openvino(data, (), spec.device.upper(), spec.id)
    total = ops or len(walk_nodes(model.graph))  # NOTE: conversion failed: count the ONNX nodes, bodies too
    return CheckReport(spec.id, total, max(0, total - len({i.node for i in issues})), tuple(issues))

"""The npu-openvino pipeline: input shapes made static (the NPU compiles nothing else), no ONNX preparation,
then one lowering per candidate: an FP16 IR, and an NNCF INT8 IR (float leftovers in FP16) where there is
calibration data. Each IR is compiled once for the NPU, or for the CPU plugin where this host has no NPU.

Transformers get NNCF's transformer settings (mask Add/Mul kept in float, asymmetric activations).
`int8-mixed` (accuracy-aware: the int8 IR with the fewest (then cheapest) layers kept in float, FP16 on the
NPU, that meet the budget) is built by the compiler from the int8 plan, through targets/openvino/nncf_mixed_plan.py.
"""

from __future__ import annotations

from typing import Any

from edgeml.compiler.intake import onnx_signature
from edgeml.compiler.lowerings import (
    ConvertToOpenVINO,
    ConvertToOpenVINOConfig,
    QuantizeWithNNCF,
    QuantizeWithNNCFConfig,
)
from edgeml.compiler.optional_dependency import import_optional
from edgeml.compiler.plan import CandidatePlan, Plan
from edgeml.errors import TargetError
from edgeml.targets.graph_kind import graph_kind, nncf_blind_spot
from edgeml.targets.npu_openvino.recipe import Recipe
from edgeml.targets.openvino.static_shapes import StaticShapes, example_shape_option, static_shapes

__all__ = ["plan"]

_TARGET = "npu-openvino"
_DEVICE = "NPU"  # OpenVINO's name for target.toml's device
_WITH_INT8 = ("auto", "int8", "int8-mixed")  # NOTE: int8-mixed starts from the int8 IR


def plan(model: Any, recipe: Recipe) -> Plan:
    shapes = _static_shapes(model, recipe)
    kind = graph_kind(model)
    candidates: dict[str, CandidatePlan] = {}
    notes = [f"graph kind: {kind}", *_shape_notes(shapes), *_host_notes()]
    if recipe.precision in ("auto", "fp16"):
        candidates["fp16"] = CandidatePlan(lowering=ConvertToOpenVINO(ConvertToOpenVINOConfig("fp16", shapes, _DEVICE)))
    blind = nncf_blind_spot(model, recipe.precision) if recipe.precision in _WITH_INT8 else None
    if blind:
        notes.append(blind)
    elif recipe.precision in _WITH_INT8:
        candidates["int8"] = CandidatePlan(lowering=QuantizeWithNNCF(nncf_config(kind, recipe, shapes)))
    return Plan([], candidates, tuple(notes))


def nncf_config(kind: str, recipe: Recipe, shapes: StaticShapes) -> QuantizeWithNNCFConfig:
    transformer = kind == "transformer"
    preset = recipe.nncf_preset if recipe.nncf_preset != "auto" else ("mixed" if transformer else "performance")
    return QuantizeWithNNCFConfig(
        preset=preset,
        model_type="transformer" if transformer else "",
        fast_bias_correction=recipe.fast_bias_correction,
        fp16_weights=True,
        shapes=shapes,
        device=_DEVICE,
    )


def _static_shapes(model: Any, recipe: Recipe) -> StaticShapes:
    """The check's static-shape rule, applied with the user's options: refuse any dim left dynamic."""
    signature = onnx_signature(model)
    shapes, issues = static_shapes(signature, recipe.shape, _TARGET)
    if issues:
        details = "; ".join(f"{i.node} [{i.op}] breaks {i.rule}: {i.detail}" for i in issues)
        raise TargetError(
            f"target {_TARGET} cannot run this model: {details}",
            f"-O shape={example_shape_option(signature)} (a size of your choice for each dynamic dim)",
        )
    return shapes


def _shape_notes(shapes: StaticShapes) -> list[str]:
    return [f"static shapes: {', '.join(f'{n}:' + 'x'.join(map(str, d)) for n, d in shapes)}"] if shapes else []


def _host_notes() -> list[str]:
    ov = import_optional("openvino", "compile", f"target {_TARGET}")
    if _DEVICE in ov.Core().available_devices:
        return []
    return [
        f"no {_DEVICE} on this host: every candidate was compiled and run on the OpenVINO CPU plugin instead; "
        "its accuracy figures hold for the IR, its latency figures are the CPU's, not the NPU's"
    ]

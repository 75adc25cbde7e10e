"""The cpu-openvino pipeline: no ONNX preparation (OpenVINO's frontend converts and optimizes the graph
itself), then one lowering per candidate: an FP32 IR, and an NNCF INT8 IR (calibrated on the data every compile has).

INT8 is tried on every kind of graph: OpenVINO's CPU plugin runs NNCF's INT8 fast on convolutions and
MatMuls alike (MiniLM: 2.9× ONNX Runtime FP32 here). Transformers get NNCF's transformer settings (mask
Add/Mul kept in float, asymmetric activations). FP32 ships when INT8 misses the budget or does not pay off.

`int8-mixed` (accuracy-aware: the int8 IR with the fewest (then cheapest) layers kept in float that meet the
budget) is built by the compiler from the int8 plan, through targets/openvino/nncf_mixed_plan.py; pinning it plans int8
as its start.
"""

from __future__ import annotations

from typing import Any

from edgeml.compiler.lowerings import (
    ConvertToOpenVINO,
    ConvertToOpenVINOConfig,
    QuantizeWithNNCF,
    QuantizeWithNNCFConfig,
)
from edgeml.compiler.plan import CandidatePlan, Plan
from edgeml.targets.cpu_openvino.recipe import Recipe
from edgeml.targets.graph_kind import graph_kind, nncf_blind_spot

__all__ = ["plan"]

_DEVICE = "CPU"  # OpenVINO's name for target.toml's device
_WITH_INT8 = ("auto", "int8", "int8-mixed")  # NOTE: int8-mixed starts from the int8 IR


def plan(model: Any, recipe: Recipe) -> Plan:
    kind = graph_kind(model)
    candidates: dict[str, CandidatePlan] = {}
    notes = [f"graph kind: {kind}"]
    if recipe.precision in ("auto", "fp32"):
        candidates["fp32"] = CandidatePlan(lowering=ConvertToOpenVINO(ConvertToOpenVINOConfig("fp32", (), _DEVICE)))
    blind = nncf_blind_spot(model, recipe.precision) if recipe.precision in _WITH_INT8 else None
    if blind:
        notes.append(blind)
    elif recipe.precision in _WITH_INT8:
        candidates["int8"] = CandidatePlan(lowering=QuantizeWithNNCF(nncf_config(kind, recipe)))
    return Plan([], candidates, tuple(notes))


def nncf_config(kind: str, recipe: Recipe) -> QuantizeWithNNCFConfig:
    transformer = kind == "transformer"
    preset = recipe.nncf_preset if recipe.nncf_preset != "auto" else ("mixed" if transformer else "performance")
    return QuantizeWithNNCFConfig(
        preset=preset,
        model_type="transformer" if transformer else "",
        fast_bias_correction=recipe.fast_bias_correction,
        device=_DEVICE,
    )

"""The tflite-cpu pipeline: no ONNX passes; one candidate per precision, each lowered from the PyTorch source.

    fp32          litert-torch float32 conversion
    int8-dynamic  that float model + ai-edge-quantizer dynamic_wi8_afp32 (int8 weights, float activations):
                  LiteRT's own default; skipped when no operator has weights it quantizes
                  (../litert/tflite_dynamic_range.py)
    int8          litert-torch PT2E full INT8, int8 inputs and outputs (needs calibration data)
    int8-mixed    that INT8 model with the fewest (then cheapest) layers kept in float32 that meet the accuracy
                  budget: built by the compiler from the int8 plan (../litert/tflite_mixed_plan.py) when int8
                  misses it;
                  pinning it plans int8 as its start

Auto builds all three and ships the fastest within budget (speed judged against the fp32 TFLite); a pinned
precision builds only that one. litert-torch converts from PyTorch, not from ONNX, so the prepared ONNX only
keys the cache: the lowerings load the compile's own source (an ONNX-only source is refused there).
"""

from __future__ import annotations

from typing import Any

from edgeml.compiler.lowerings.convert_to_tflite import ConvertToTflite
from edgeml.compiler.lowerings.convert_to_tflite_dynamic import ConvertToTfliteDynamic
from edgeml.compiler.lowerings.convert_to_tflite_int8 import ConvertToTfliteInt8, ConvertToTfliteInt8Config
from edgeml.compiler.plan import CandidatePlan, Plan
from edgeml.host import host_info
from edgeml.targets.litert.tflite_dynamic_range import dynamic_range
from edgeml.targets.require_modules import require_modules
from edgeml.targets.tflite_cpu.recipe import Recipe

__all__ = ["PRECISIONS", "plan"]

PRECISIONS = ("fp32", "int8-dynamic", "int8")
_INT8_IO = "int8: int8 inputs and outputs; the LiteRT adapter quantizes feeds and dequantizes outputs with their scales"


def plan(model: Any, recipe: Recipe) -> Plan:
    wanted = PRECISIONS if recipe.precision == "auto" else (recipe.precision,)
    if recipe.precision == "int8-mixed":
        wanted = ("int8",)
    modules = ("litert_torch", "ai_edge_litert") + (("ai_edge_quantizer",) if "int8-dynamic" in wanted else ())
    require_modules(modules, "litert", "target tflite-cpu")
    candidates: dict[str, CandidatePlan] = {}
    notes: list[str] = []
    if "fp32" in wanted:
        candidates["fp32"] = CandidatePlan([], ConvertToTflite())
    if "int8-dynamic" in wanted:
        weights = dynamic_range(model)
        notes.append(weights.describe())
        if weights.quantized or recipe.precision == "int8-dynamic":
            candidates["int8-dynamic"] = CandidatePlan([], ConvertToTfliteDynamic())
    if "int8" in wanted:
        candidates["int8"] = CandidatePlan([], ConvertToTfliteInt8(ConvertToTfliteInt8Config(recipe.per_channel)))
        notes.append(_INT8_IO)
    if len(candidates) > 1 and host_info().arch != "arm64":
        notes.append(
            f"candidates are timed on this {host_info().arch} host; LiteRT's kernels on an Arm device may rank "
            "them differently: pin -O precision=int8 (or int8-dynamic) to ship one regardless"
        )
    return Plan([], candidates, tuple(notes))

"""The tflite-cpu pipeline: no ONNX passes; one candidate, full INT8, lowered from the PyTorch source.

litert-torch converts from PyTorch, not from ONNX, so the prepared ONNX only keys the cache: the lowering
loads the compile's own source (an ONNX-only source is refused there, naming the sources that work).
"""

from __future__ import annotations

from typing import Any

from edgeml.compiler.lowerings.convert_to_tflite_int8 import ConvertToTfliteInt8, ConvertToTfliteInt8Config
from edgeml.errors import CalibrationError
from edgeml.targets.plan import CandidatePlan, Plan
from edgeml.targets.require_modules import require_modules
from edgeml.targets.tflite_cpu.recipe import Recipe

__all__ = ["plan"]


def plan(model: Any, recipe: Recipe, has_calibration: bool) -> Plan:
    require_modules(("litert_torch", "ai_edge_litert"), "litert", "target tflite-cpu")
    if not has_calibration:
        raise CalibrationError("target tflite-cpu quantizes to full INT8 and needs calibration data", "pass --calib")
    lowering = ConvertToTfliteInt8(ConvertToTfliteInt8Config(per_channel=recipe.per_channel))
    notes = ("int8 inputs and outputs: the LiteRT adapter quantizes feeds and dequantizes outputs with their scales",)
    return Plan([], {"int8": CandidatePlan([], lowering)}, notes)

"""tflite-cpu: LiteRT (TensorFlow Lite) on the device's Arm CPU: fp32, int8-dynamic, full INT8 and int8-mixed."""

from __future__ import annotations

from edgeml.targets.litert.tflite_mixed_plan import MIXED_BASE, mixed_layers, mixed_plan
from edgeml.targets.target import MixedPrecision, target_from_folder
from edgeml.targets.tflite_cpu.check import check
from edgeml.targets.tflite_cpu.lower import plan
from edgeml.targets.tflite_cpu.recipe import Recipe

__all__ = ["TARGET"]

TARGET = target_from_folder(
    __file__, recipe_type=Recipe, check=check, plan=plan,
    mixed=MixedPrecision(MIXED_BASE, mixed_layers, mixed_plan),
)  # fmt: skip

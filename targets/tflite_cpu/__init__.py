"""tflite-cpu: LiteRT (TensorFlow Lite) on the device's Arm CPU: fp32, int8-dynamic, full INT8 and int8-mixed."""

from __future__ import annotations

from pathlib import Path

from edgeml.targets.target_spec import load_target_spec
from edgeml.targets.tflite_cpu.check import check
from edgeml.targets.tflite_cpu.lower import plan
from edgeml.targets.tflite_cpu.recipe import Recipe
from edgeml.targets.tflite_mixed_plan import MIXED_BASE, mixed_layers, mixed_plan

__all__ = ["MIXED_BASE", "SPEC", "Recipe", "check", "mixed_layers", "mixed_plan", "plan"]

SPEC = load_target_spec(Path(__file__).with_name("target.toml"))

"""tflite-cpu: LiteRT (TensorFlow Lite) on the device's Arm CPU, full INT8."""

from __future__ import annotations

from pathlib import Path

from edgeml.targets.target_spec import load_target_spec
from edgeml.targets.tflite_cpu.check import check
from edgeml.targets.tflite_cpu.lower import plan
from edgeml.targets.tflite_cpu.recipe import Recipe

__all__ = ["SPEC", "Recipe", "check", "plan"]

SPEC = load_target_spec(Path(__file__).with_name("target.toml"))

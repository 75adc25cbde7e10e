"""gpu-ort: ONNX Runtime on an NVIDIA GPU (CUDA / TensorRT execution providers), ONNX in FP32, FP16, INT8
or int8-mixed (the accuracy-aware INT8 with the fewest (then cheapest) layers kept in float)."""

from __future__ import annotations

from pathlib import Path

from edgeml.targets.gpu_ort.check import check
from edgeml.targets.gpu_ort.lower import MIXED_BASE, mixed_layers, mixed_plan, plan
from edgeml.targets.gpu_ort.recipe import Recipe
from edgeml.targets.target_spec import load_target_spec

__all__ = ["MIXED_BASE", "SPEC", "Recipe", "check", "mixed_layers", "mixed_plan", "plan"]

SPEC = load_target_spec(Path(__file__).with_name("target.toml"))

"""gpu-ort: ONNX Runtime on an NVIDIA GPU (CUDA / TensorRT execution providers), ONNX in FP32, FP16, INT8
or int8-mixed (the accuracy-aware INT8 with the fewest (then cheapest) layers kept in float)."""

from __future__ import annotations

from edgeml.targets.gpu_ort.check import check
from edgeml.targets.gpu_ort.lower import MIXED_BASE, mixed_layers, mixed_plan, plan
from edgeml.targets.gpu_ort.recipe import Recipe
from edgeml.targets.target import MixedPrecision, target_from_folder

__all__ = ["TARGET"]

TARGET = target_from_folder(
    __file__, recipe_type=Recipe, check=check, plan=plan,
    mixed=MixedPrecision(MIXED_BASE, mixed_layers, mixed_plan),
)  # fmt: skip

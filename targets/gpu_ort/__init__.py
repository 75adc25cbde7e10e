"""gpu-ort: ONNX Runtime on an NVIDIA GPU (CUDA / TensorRT execution providers), ONNX in FP32, FP16 or INT8."""

from __future__ import annotations

from pathlib import Path

from edgeml.targets.gpu_ort.check import check
from edgeml.targets.gpu_ort.lower import plan
from edgeml.targets.gpu_ort.recipe import Recipe
from edgeml.targets.target_spec import load_target_spec

__all__ = ["SPEC", "Recipe", "check", "plan"]

SPEC = load_target_spec(Path(__file__).with_name("target.toml"))

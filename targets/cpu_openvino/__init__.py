"""cpu-openvino: OpenVINO Runtime on the device's CPU, from an OpenVINO IR (FP32 or NNCF INT8)."""

from __future__ import annotations

from pathlib import Path

from edgeml.targets.cpu_openvino.check import check
from edgeml.targets.cpu_openvino.lower import plan
from edgeml.targets.cpu_openvino.recipe import Recipe
from edgeml.targets.nncf_mixed_plan import MIXED_BASE, mixed_layers, mixed_plan
from edgeml.targets.target_spec import load_target_spec

__all__ = ["MIXED_BASE", "SPEC", "Recipe", "check", "mixed_layers", "mixed_plan", "plan"]

SPEC = load_target_spec(Path(__file__).with_name("target.toml"))

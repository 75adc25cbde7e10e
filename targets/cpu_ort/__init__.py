"""cpu-ort: ONNX Runtime on the device's CPU."""

from __future__ import annotations

from pathlib import Path

from edgeml.targets.cpu_ort.check import check
from edgeml.targets.cpu_ort.lower import MIXED_BASE, mixed_base, mixed_layers, mixed_max_ranked, mixed_plan, plan
from edgeml.targets.cpu_ort.recipe import Recipe
from edgeml.targets.target_spec import load_target_spec

__all__ = [
    "MIXED_BASE", "SPEC", "Recipe", "check", "mixed_base", "mixed_layers", "mixed_max_ranked", "mixed_plan", "plan",
]  # fmt: skip

SPEC = load_target_spec(Path(__file__).with_name("target.toml"))

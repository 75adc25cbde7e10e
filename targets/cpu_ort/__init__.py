"""cpu-ort: ONNX Runtime on the device's CPU."""

from __future__ import annotations

from edgeml.targets.cpu_ort.check import check
from edgeml.targets.cpu_ort.lower import MIXED_BASE, mixed_base, mixed_layers, mixed_max_ranked, mixed_plan, plan
from edgeml.targets.cpu_ort.recipe import Recipe
from edgeml.targets.target import MixedPrecision, target_from_folder

__all__ = ["TARGET"]

TARGET = target_from_folder(
    __file__, recipe_type=Recipe, check=check, plan=plan,
    mixed=MixedPrecision(MIXED_BASE, mixed_layers, mixed_plan, choose_base=mixed_base, max_ranked=mixed_max_ranked),
)  # fmt: skip

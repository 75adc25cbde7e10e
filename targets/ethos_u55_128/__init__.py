"""ethos-u55-128: Arm Ethos-U55-128 microNPU (Cortex-M host), full-INT8 TFLite compiled by Vela."""

from __future__ import annotations

from edgeml.targets.ethos_u55_128.check import check
from edgeml.targets.ethos_u55_128.lower import plan
from edgeml.targets.ethos_u55_128.recipe import Recipe
from edgeml.targets.litert.tflite_mixed_plan import MIXED_BASE, mixed_layers, mixed_plan
from edgeml.targets.target import MixedPrecision, target_from_folder

__all__ = ["TARGET"]

TARGET = target_from_folder(
    __file__, recipe_type=Recipe, check=check, plan=plan,
    mixed=MixedPrecision(MIXED_BASE, mixed_layers, mixed_plan),
)  # fmt: skip

"""ethos-u65-256: Arm Ethos-U65-256 microNPU (with DRAM), full-INT8 TFLite compiled by Vela."""

from __future__ import annotations

from pathlib import Path

from edgeml.targets.ethos_u65_256.check import check
from edgeml.targets.ethos_u65_256.lower import plan
from edgeml.targets.ethos_u65_256.recipe import Recipe
from edgeml.targets.target_spec import load_target_spec
from edgeml.targets.tflite_mixed_plan import MIXED_BASE, mixed_layers, mixed_plan

__all__ = ["MIXED_BASE", "SPEC", "Recipe", "check", "mixed_layers", "mixed_plan", "plan"]

SPEC = load_target_spec(Path(__file__).with_name("target.toml"))

"""The ethos-u55-128 pipeline: the Ethos-U plan (../ethos_u_plan.py) for this target's accelerator (target.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeml.targets.ethos_u55_128.recipe import Recipe
from edgeml.targets.ethos_u_plan import ethos_u_plan
from edgeml.targets.plan import Plan
from edgeml.targets.target_spec import load_target_spec

__all__ = ["plan"]

_SPEC = load_target_spec(Path(__file__).with_name("target.toml"))


def plan(model: Any, recipe: Recipe, has_calibration: bool) -> Plan:
    return ethos_u_plan(model, recipe, has_calibration, _SPEC)

"""The ethos-u65-256 pipeline: the Ethos-U plan (../ethos_u/plan.py) for this target's accelerator (target.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeml.compiler.plan import Plan
from edgeml.targets.ethos_u.plan import ethos_u_plan
from edgeml.targets.ethos_u65_256.recipe import Recipe
from edgeml.targets.target_spec import load_target_spec

__all__ = ["plan"]

_SPEC = load_target_spec(Path(__file__).with_name("target.toml"))


def plan(model: Any, recipe: Recipe) -> Plan:
    return ethos_u_plan(model, recipe, _SPEC)

"""A hardware target as one typed, frozen object: what it is (`target.toml` → spec), its options (recipe type),
and its two questions — can it run this model (`check`), and which passes and lowering produce its files
(`plan`) — plus, where it offers `int8-mixed`, its mixed-precision capability.

Each target folder builds its `TARGET` in its `__init__.py`; `edgeml.targets.TARGETS` registers the folders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeml.compiler.mixed_precision import MixedPrecision
from edgeml.compiler.plan import Plan
from edgeml.targets.check_report import CheckReport
from edgeml.targets.recipe import make_recipe
from edgeml.targets.target_spec import TargetSpec, load_target_spec

# NOTE: MixedPrecision is the compiler's type, re-exported: a target folder builds its Target from here alone
__all__ = ["MixedPrecision", "Target", "target_from_folder"]


@dataclass(frozen=True)
class Target:
    spec: TargetSpec
    recipe_type: type  # a frozen dataclass of `option` fields (edgeml/option.py)
    check: Callable[..., CheckReport]  # (ONNX bytes, parsed model, spec, recipe=None) → what it cannot run
    plan: Callable[[Any, Any], Plan]  # (parsed model, recipe) → the compile plan
    mixed: MixedPrecision | None = None  # the accuracy-aware int8-mixed capability, where it has one

    @property
    def id(self) -> str:
        return self.spec.id

    def recipe(self, overrides: Mapping[str, Any] | None = None) -> Any:
        """target.toml's defaults + `overrides` → this target's typed recipe (unknown or ill-typed refused)."""
        return make_recipe(self.recipe_type, self.spec.id, self.spec.recipe_defaults, overrides or {})


def target_from_folder(init_file: str, **parts: Any) -> Target:
    """The target whose folder holds `init_file` (its `__init__.py`): spec from the `target.toml` beside it."""
    return Target(spec=load_target_spec(Path(init_file).with_name("target.toml")), **parts)

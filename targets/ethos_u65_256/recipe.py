"""Every option of the ethos-u65-256 target: the Ethos-U options (../ethos_u/recipe.py); defaults in target.toml."""

from __future__ import annotations

from edgeml.targets.ethos_u.recipe import EthosURecipe as Recipe

__all__ = ["Recipe"]

"""A recipe file (TOML, YAML or JSON) → the settings of a compile, checked key by key against the options
schema (compile_options.py: each option names the key a recipe holds it under).

    target = "cpu-ort"
    calib_samples = 256
    [budget]
    max_drop = 1.0
    min_cosine = 0.99
    min_channel_cosine = 0.9
    min_agreement = 0.99
    [options]            # the target's options (`edgeml targets --options TARGET`)
    calibrate_method = "entropy"
    [prune]              # optional: PyTorch sources only (see `edgeml compile --help`)
    spec = "channels:0.3"
    finetune = "train.npz"
    epochs = 5
    [inputs]             # optional: inputs whose samples are not along axis 0, or that hold a constant
    state = {batch_axis = 1}
    sr = {constant = 16000}

Every compile records the recipe it ran with in its manifest (`provenance.recipe`, same shape), so
`edgeml compile MODEL --recipe that.json` reproduces it: the recipe, and the artifact's name and version
(a recipe file names neither). Flags given on the command line win over the file.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeml.errors import EdgemlError

if sys.version_info >= (3, 11):
    import tomllib
else:  # NOTE: tomllib is 3.11+; tomli is the same parser, a core dependency on 3.10
    import tomli as tomllib

__all__ = ["RecipeFile", "load_recipe_file"]


@dataclass(frozen=True)
class RecipeFile:
    target: str | None = None
    calib_samples: int | None = None
    budget: dict[str, float] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    prune: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)  # per input: {batch_axis: N | none} or {constant: V}
    name: str | None = None  # these three come from a manifest only: what the reproduced artifact was
    version: str | None = None
    key_id: str | None = None


def load_recipe_file(path: str | os.PathLike[str]) -> RecipeFile:
    from edgeml.compiler.compile_options import recipe_keys  # NOTE: the schema reads recipe files: imported late

    top, budget_keys, prune_keys = recipe_keys(), recipe_keys("budget"), recipe_keys("prune")
    raw = _parse(Path(path))
    if not isinstance(raw, dict):
        raise EdgemlError(f"recipe {path} is not a table of settings")
    identity: dict[str, Any] = {}
    if "schema_version" in raw and "provenance" in raw:  # a whole manifest: take the recipe it recorded
        signature = raw.get("signature") or {}
        identity = {"name": raw.get("name"), "version": raw.get("version"), "key_id": signature.get("key_id")}
        raw = raw["provenance"]["recipe"]
    unknown = set(raw) - top
    if unknown:
        raise EdgemlError(
            f"recipe {path}: unknown key(s) {', '.join(sorted(unknown))}", f"known: {', '.join(sorted(top))}"
        )
    budget = raw.get("budget", {})
    if not isinstance(budget, dict) or set(budget) - budget_keys:
        raise EdgemlError(f"recipe {path}: [budget] takes {', '.join(sorted(budget_keys))}")
    options = raw.get("options", {})
    if not isinstance(options, dict):
        raise EdgemlError(f"recipe {path}: [options] must be a table of target options")
    prune = raw.get("prune", {})
    if not isinstance(prune, dict) or set(prune) - prune_keys:
        raise EdgemlError(f"recipe {path}: [prune] takes {', '.join(sorted(prune_keys))}")
    inputs = raw.get("inputs", {})
    if not isinstance(inputs, dict):
        raise EdgemlError(f"recipe {path}: [inputs] maps input names to {{batch_axis = N}} or {{constant = V}}")
    budget = {k: float(v) for k, v in budget.items()}
    return RecipeFile(raw.get("target"), raw.get("calib_samples"), budget, options, prune, inputs, **identity)


def _parse(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise EdgemlError(f"cannot read recipe {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise EdgemlError(f"recipe {path} does not parse: {exc}", "use TOML, YAML or JSON") from exc

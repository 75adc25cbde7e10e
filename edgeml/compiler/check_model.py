"""`edgeml check`: a model + a target → can it run there, and what falls back — without compiling.

Takes the model in (a PyTorch source is exported once, cached) and runs the target's own pre-flight check,
the same rules its lowering applies.
"""

from __future__ import annotations

import os
from typing import Any

from edgeml.compiler.content_cache import ContentCache
from edgeml.compiler.intake import identify_source, take_in
from edgeml.compiler.progress import NullProgress, Progress
from edgeml.locations import cache_dir as default_cache_dir
from edgeml.targets import default_target_id, load_target
from edgeml.targets.check_report import CheckReport
from edgeml.targets.recipe import make_recipe
from edgeml.targets.source_kinds import check_source_kind

__all__ = ["check_model"]


def check_model(
    model: str | os.PathLike[str],
    target: str | None = None,
    *,
    options: dict[str, Any] | None = None,
    calib: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> CheckReport:
    import numpy as np
    import onnx

    target_mod = load_target(target or default_target_id())
    recipe = make_recipe(target_mod.Recipe, target_mod.SPEC.id, target_mod.SPEC.recipe_defaults, options or {})
    source = identify_source(str(model))
    check_source_kind(target_mod.SPEC, source.kind, source.location)

    def examples() -> dict[str, np.ndarray]:
        with np.load(calib) as z:
            return {k: z[k] for k in z.files if k not in ("labels", "label", "y")}

    intake = take_in(source, ContentCache(default_cache_dir(cache_dir)), progress or NullProgress(),
                     examples if calib else None)  # fmt: skip
    proto = onnx.load_model_from_string(intake.onnx.data)
    return target_mod.check(intake.onnx.data, proto, target_mod.SPEC, recipe)

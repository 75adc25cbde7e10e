"""A static-shape target with no `shape` option given takes its input shapes from the calibration data.

The NPU compiles static shapes only. When the model leaves dims dynamic and the user gave no
`-O shape=…`, the shapes the calibration samples have are the natural choice: they are what the model
will be calibrated, evaluated and self-tested on. Each sample is one batch element, so a dynamic batch dim
(on each input's own batch axis) becomes 1 and every other dynamic dim takes the data's size. The result is
written into the recipe — so the manifest records it and `--recipe` reproduces it — and said in a note.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgeml.calibration.dataset import Dataset
from edgeml.signature import ModelSignature

__all__ = ["shape_from_data"]


def shape_from_data(recipe: Any, signature: ModelSignature, data: Dataset, target_id: str) -> tuple[Any, str | None]:
    """(the recipe, with `shape` filled in from `data` where that is needed and possible; a note, or None)."""
    if getattr(recipe, "shape", None) != "" or not any(spec.dynamic_dims for spec in signature.inputs):
        return recipe, None
    entries = []
    feed = data.feed(slice(0, 1))
    for spec in signature.inputs:
        if not spec.dynamic_dims:
            continue  # NOTE: static already (a scalar sample rate, a fixed state): nothing to fix
        array = feed.get(spec.name)
        if array is None or array.ndim != len(spec.shape):
            return recipe, None  # NOTE: the check then names the dynamic dims and the option that fixes them
        shape = array.shape
        if not spec.fits(shape):
            return recipe, None
        entries.append(f"{spec.name}:{'x'.join(map(str, shape))}")
    option = ",".join(entries)
    note = (
        f"{target_id}: static input shapes taken from the calibration data ({option}); give -O shape=… to choose others"
    )
    return dataclasses.replace(recipe, shape=option), note

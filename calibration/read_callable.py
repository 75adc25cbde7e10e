"""`package.module:function` → Dataset. The function returns a mapping of input name → array (samples
first), or an iterable of such mappings (one batch each, samples first), optionally with a `labels` key.
A scalar value (a constant input such as a sample rate, or the `edgeml_inputs` specs) is taken once."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.calibration.read_npz import LABEL_KEYS
from edgeml.errors import CalibrationError
from edgeml.importing import import_callable

__all__ = ["read_callable"]


def _joined(values: list[np.ndarray]) -> np.ndarray:
    """Batches joined along their samples; a scalar (a constant, or the input specs) is taken once."""
    if values[0].ndim == 0:
        return values[0]
    return np.concatenate(values)


def read_callable(spec: str, input_names: tuple[str, ...]) -> Dataset:
    fn = import_callable(spec, CalibrationError)
    try:
        result = fn()
    except Exception as exc:
        raise CalibrationError(f"calibration function {spec} raised {type(exc).__name__}: {exc}") from exc
    parts = [result] if isinstance(result, Mapping) else list(result)
    if not parts or not all(isinstance(p, Mapping) for p in parts):
        raise CalibrationError(f"{spec} must return a mapping of input name → array, or an iterable of them")
    try:
        arrays = {k: _joined([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    except (KeyError, ValueError) as exc:
        raise CalibrationError(f"{spec}: its batches do not share keys and shapes ({exc})") from exc
    label_key = next((k for k in LABEL_KEYS if k in arrays), None)
    labels = arrays.pop(label_key) if label_key else None
    return Dataset(arrays, labels, spec)

"""`.npz` / `.npy` file → Dataset. Keys are input names; a `labels` (or `label`, `y`) key holds labels; an
`edgeml_inputs` key holds per-input specs as JSON (see `input_layout`); an `edgeml_sequences` key one sequence id
per sample (see `recurrence`)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.calibration.input_layout import SPEC_KEY
from edgeml.calibration.recurrence import SEQUENCES_KEY
from edgeml.errors import CalibrationError

__all__ = ["LABEL_KEYS", "read_npy", "read_npz"]

LABEL_KEYS = ("labels", "label", "y")


def read_npz(path: Path, input_names: tuple[str, ...]) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CalibrationError(f"cannot read {path} as .npz: {exc}", "write it with numpy.savez") from exc
    label_key = next((k for k in LABEL_KEYS if k in arrays), None)
    labels = arrays.pop(label_key) if label_key else None
    notes: tuple[str, ...] = ()
    keys = [k for k in arrays if k not in (SPEC_KEY, SEQUENCES_KEY)]
    if len(input_names) == 1 and len(keys) == 1 and input_names[0] not in arrays:
        (key,) = keys
        notes = (f"{path.name}: key {key!r} used for the model's only input {input_names[0]!r}",)
        arrays = {k if k in (SPEC_KEY, SEQUENCES_KEY) else input_names[0]: v for k, v in arrays.items()}
    return Dataset(arrays, labels, str(path), notes=notes)


def read_npy(path: Path, input_names: tuple[str, ...]) -> Dataset:
    if len(input_names) != 1:
        raise CalibrationError(
            f"{path} holds one array but the model has {len(input_names)} inputs ({', '.join(input_names)})",
            "use an .npz with one key per input name",
        )
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"cannot read {path} as .npy: {exc}") from exc
    return Dataset({input_names[0]: array}, None, str(path))

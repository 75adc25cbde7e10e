"""CSV file → Dataset for a model with one 2-D input: numeric columns are features, `label` holds labels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.calibration.read_npz import LABEL_KEYS
from edgeml.errors import CalibrationError

__all__ = ["read_csv"]


def read_csv(path: Path, input_names: tuple[str, ...], dtype: str = "float32") -> Dataset:
    if len(input_names) != 1:
        raise CalibrationError(
            f"a CSV feeds one input, but the model has {len(input_names)}", "use an .npz with one key per input"
        )
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise CalibrationError(f"{path} has no data rows under its header")
    header, body = rows[0], rows[1:]
    label_col = next((i for i, h in enumerate(header) if h.strip().lower() in LABEL_KEYS), None)
    feature_cols = [i for i in range(len(header)) if i != label_col]
    try:
        features = np.array([[float(r[i]) for i in feature_cols] for r in body], dtype=dtype)
        labels = None if label_col is None else np.array([int(float(r[label_col])) for r in body], dtype=np.int64)
    except (ValueError, IndexError) as exc:
        raise CalibrationError(f"{path}: every row needs {len(header)} numeric values ({exc})") from exc
    return Dataset({input_names[0]: features}, labels, str(path))

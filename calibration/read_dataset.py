"""A data spec (file, folder or `module:function`) → a Dataset checked against the model's inputs.

The checks here are the ones every compile relies on: not empty, finite, one array per input, dtype and
shape matching the signature (each mismatch names the input and both shapes).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.calibration.read_callable import read_callable
from edgeml.calibration.read_csv import read_csv
from edgeml.calibration.read_image_folder import read_image_folder
from edgeml.calibration.read_npz import read_npy, read_npz
from edgeml.errors import CalibrationError
from edgeml.importing import looks_like_callable_spec
from edgeml.signature import ModelSignature, TensorSpec

__all__ = ["check_fits", "read_dataset"]

_FILE_READERS = {".npz": read_npz, ".npy": read_npy, ".csv": read_csv}


def read_dataset(spec: str | os.PathLike[str], signature: ModelSignature, role: str = "calibration") -> Dataset:
    """Read `spec` and check it fits `signature`; `role` ("calibration"/"evaluation") names it in errors."""
    dataset = _read(str(spec), signature, role)
    check_fits(dataset, signature, role)
    return dataset


def _read(spec: str, signature: ModelSignature, role: str) -> Dataset:
    if looks_like_callable_spec(spec):
        return read_callable(spec, signature.input_names)
    path = Path(spec)
    if path.is_dir():
        return read_image_folder(path, signature)
    if not path.exists():
        raise CalibrationError(
            f"{role} data {path} does not exist", "pass an .npz, .npy, .csv, image folder or module:function"
        )
    reader = _FILE_READERS.get(path.suffix.lower())
    if reader is None:
        raise CalibrationError(
            f"{role} data {path}: unknown format {path.suffix!r}",
            f"use one of {', '.join(sorted(_FILE_READERS))}, an image folder, or module:function",
        )
    return reader(path, signature.input_names)


def check_fits(dataset: Dataset, signature: ModelSignature, role: str = "calibration") -> None:
    missing = [n for n in signature.input_names if n not in dataset.inputs]
    if missing:
        raise CalibrationError(
            f"{role} data {dataset.source} has no array for input(s) {', '.join(missing)} "
            f"(it has: {', '.join(sorted(dataset.inputs)) or 'nothing'})",
            f"name the arrays after the model's inputs: {', '.join(signature.input_names)}",
        )
    if len(dataset) == 0:
        raise CalibrationError(f"{role} data {dataset.source} is empty", "give it at least one sample")
    for spec in signature.inputs:
        _check_array(dataset.inputs[spec.name], spec, dataset, role)
    _check_labels(dataset, role)


def _check_array(array: np.ndarray, spec: TensorSpec, dataset: Dataset, role: str) -> None:
    where = f"{role} data {dataset.source}, input {spec.name!r}"
    if len(array) != len(dataset):
        raise CalibrationError(f"{where}: {len(array)} samples, other inputs have {len(dataset)}")
    if np.dtype(array.dtype) != np.dtype(spec.dtype):
        raise CalibrationError(
            f"{where}: dtype {array.dtype}, the model expects {spec.dtype}",
            f"convert it, e.g. array.astype(numpy.{spec.dtype})",
        )
    per_sample = array.shape[1:]
    if not spec.fits((1, *per_sample)) and not spec.fits(array.shape):
        raise CalibrationError(
            f"{where}: samples of shape {list(per_sample)} (array {list(array.shape)}) do not fit the model's "
            f"input shape {list(spec.shape)}",
            "the first axis counts samples; the rest must match the model's input",
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise CalibrationError(f"{where}: {bad} NaN/inf value(s)", "clean or drop those samples")


def _check_labels(dataset: Dataset, role: str) -> None:
    if dataset.labels is None:
        return
    if dataset.labels.shape != (len(dataset),) or dataset.labels.dtype.kind not in "iu":
        raise CalibrationError(
            f"{role} data {dataset.source}: labels must be integers of shape [{len(dataset)}], "
            f"got {dataset.labels.dtype}{list(dataset.labels.shape)}"
        )

"""A data spec (file, folder or `module:function`) → a Dataset checked against the model's inputs.

The readers give arrays in the model's layout; `arrange_inputs` decides each input's batch axis or constant
(from the specs given, else inferred) and stores the samples first. The checks here are the ones every
compile relies on: not empty, finite, one array per input, dtype and shape matching the signature (each
mismatch names the input, both shapes and the layout it was read with).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.calibration.input_layout import (
    SPEC_KEY,
    InputLayout,
    InputSpec,
    arrange_inputs,
    layouts_without_data,
    parse_input_specs,
)
from edgeml.calibration.read_callable import read_callable
from edgeml.calibration.read_csv import read_csv
from edgeml.calibration.read_image_folder import read_image_folder
from edgeml.calibration.read_npz import read_npy, read_npz
from edgeml.calibration.recurrence import SEQUENCES_KEY, annotated, decide_recurrence, sequence_ids
from edgeml.errors import CalibrationError
from edgeml.importing import looks_like_callable_spec
from edgeml.signature import ModelSignature, TensorSpec

__all__ = ["ID_KEYS", "check_fits", "read_dataset", "read_dataset_with_ids"]

ID_KEYS = ("ids", "id")  # an .npz array of per-sample ids (not a model input): `edgeml run` writes them back

_FILE_READERS = {".npz": read_npz, ".npy": read_npy, ".csv": read_csv}


def read_dataset(
    spec: str | os.PathLike[str],
    signature: ModelSignature,
    role: str = "calibration",
    input_specs: dict[str, InputSpec] | None = None,
) -> Dataset:
    """Read `spec` and check it fits `signature`; `role` ("calibration"/"evaluation") names it in errors;
    `input_specs` (batch axis or constant per input) win over those the data itself carries."""
    dataset = arranged(_read(str(spec), signature, role), signature, input_specs or {}, role)
    check_fits(dataset, signature, role)
    return dataset


def read_dataset_with_ids(
    spec: str | os.PathLike[str], signature: ModelSignature, role: str = "input"
) -> tuple[Dataset, np.ndarray | None]:
    """As `read_dataset`, and the per-sample ids the data carries (an `ids` or `id` array in an .npz), if any."""
    raw = _read(str(spec), signature, role)
    key = next((k for k in ID_KEYS if k in raw.inputs and k not in signature.input_names), None)
    ids = None
    if key is not None:
        ids = raw.inputs[key]
        raw = dataclasses.replace(raw, inputs={k: v for k, v in raw.inputs.items() if k != key})
        if len(raw.inputs) == 1 and len(signature.input_names) == 1:  # NOTE: the only other key feeds the only input
            raw = dataclasses.replace(raw, inputs={signature.input_names[0]: next(iter(raw.inputs.values()))})
    dataset = arranged(raw, signature, {}, role)
    check_fits(dataset, signature, role)
    return dataset, ids


def arranged(raw: Dataset, signature: ModelSignature, given: dict[str, InputSpec], role: str) -> Dataset:
    """A reader's model-layout arrays → samples first, with each input's batch axis and the constants."""
    arrays = dict(raw.inputs)
    carried = parse_input_specs(arrays.pop(SPEC_KEY, None), f"{role} data {raw.source}, entry {SPEC_KEY!r}")
    raw_ids = arrays.pop(SEQUENCES_KEY, None)
    specs = carried | given
    unknown = sorted(set(specs) - set(signature.input_names))
    if unknown:
        raise CalibrationError(
            f"input spec(s) for {', '.join(unknown)}, which the model does not have",
            f"its inputs: {', '.join(t.describe() for t in signature.inputs)}",
        )
    extra = sorted(set(arrays) - set(signature.input_names))
    notes = raw.notes
    if extra and len(arrays) > len(extra):
        notes += (f"{role} data {raw.source}: array(s) {', '.join(extra)} are not model inputs and are not fed",)
        arrays = {k: v for k, v in arrays.items() if k not in extra}
    samples, axes, constants, layouts = arrange_inputs(arrays, signature, specs, f"{role} data {raw.source}")
    samples |= {k: v for k, v in arrays.items() if k not in samples and k not in constants}
    arranged = dataclasses.replace(
        raw, inputs=samples, batch_axes=axes, constants=constants, layouts=layouts, notes=notes
    )
    return with_sequences(arranged, signature, specs, raw_ids, role)


def with_sequences(
    data: Dataset, signature: ModelSignature, specs: dict[str, InputSpec], raw_ids, role: str
) -> Dataset:
    """The inputs fed back from an output (given or inferred), each layout saying so; the sequence ids; a zero
    state for a fed-back input the data leaves out."""
    recurrent = decide_recurrence(signature, specs)
    source = f"{role} data {data.source}"
    ids = sequence_ids(raw_ids, len(data), source) if data.inputs else None
    if not recurrent:
        note = f"{source}: {SEQUENCES_KEY} is ignored: no input is fed back from an output" if ids is not None else ""
        return dataclasses.replace(data, notes=data.notes + ((note,) if note else ()))
    starts_from_data = sorted(k for k, r in recurrent.items() if r.initial == "data" and k not in data.inputs)
    if starts_from_data:
        raise CalibrationError(
            f"{source} has no array for input(s) {', '.join(starts_from_data)}, whose sequences start from the "
            "stored state (initial = data)",
            "store the states, or start from zeros: initial = zeros",
        )
    data = zero_states(data, signature, specs, {k for k in recurrent if k not in data.inputs}, source)
    return dataclasses.replace(data, layouts=annotated(data.layouts, recurrent), recurrent=recurrent, sequence_ids=ids)


def zero_states(data: Dataset, signature: ModelSignature, specs, missing: set[str], source: str) -> Dataset:
    """Zeros for each fed-back input the data leaves out (closed-loop evaluation starts from them; calibration
    then gets the float model's own states): its batch axis from the specs or shapes, every other dim fixed."""
    if not missing or not data.inputs:
        return data
    decided = {lay.name: lay for lay in layouts_without_data(signature, specs)}
    inputs, axes, layouts = dict(data.inputs), dict(data.batch_axes), {lay.name: lay for lay in data.layouts}
    for name in sorted(missing):
        lay, spec = decided[name], signature.input(name)
        rest = [d for i, d in enumerate(spec.shape) if i != lay.batch_axis]
        if lay.batch_axis is None or any(isinstance(d, str) for d in rest):
            raise CalibrationError(
                f"{source} has no array for input {name!r} ({spec.describe()}), fed back from an output, and its "
                "shape does not say the zero state to start from",
                f"store {name}'s initial state in the data (with initial = data), or its samples",
            )
        inputs[name] = np.zeros((len(data), *rest), spec.dtype)
        axes[name] = lay.batch_axis
        how = "not in the data: a zero state, then the float model's own"
        layouts[name] = dataclasses.replace(lay, how=how)
    ordered = tuple(layouts[n] for n in signature.input_names if n in layouts)
    return dataclasses.replace(data, inputs=inputs, batch_axes=axes, layouts=ordered)


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
    missing = [n for n in signature.input_names if n not in dataset.inputs and n not in dataset.constants]
    if missing:
        raise CalibrationError(
            f"{role} data {dataset.source} has no array for input(s) {', '.join(missing)} "
            f"(it has: {', '.join(sorted(dataset.inputs)) or 'nothing'})",
            f"name the arrays after the model's inputs: {', '.join(signature.input_names)}",
        )
    if not dataset.inputs:
        raise CalibrationError(
            f"{role} data {dataset.source} holds constants only ({', '.join(dataset.constants)})",
            "give at least one input with samples",
        )
    if len(dataset) == 0:
        raise CalibrationError(f"{role} data {dataset.source} is empty", "give it at least one sample")
    layouts = {layout.name: layout for layout in dataset.layouts}
    for spec in signature.inputs:
        if spec.name in dataset.constants:
            _check_constant(dataset.constants[spec.name], spec, dataset, role)
        else:
            _check_array(dataset.inputs[spec.name], spec, dataset, role, layouts.get(spec.name))
    _check_labels(dataset, role)


def _check_constant(value: np.ndarray, spec: TensorSpec, dataset: Dataset, role: str) -> None:
    where = f"{role} data {dataset.source}, input {spec.name!r}"
    if not spec.fits(value.shape):
        raise CalibrationError(
            f"{where}: the constant {value.tolist()} has shape {list(value.shape)}, the model's input is "
            f"{list(spec.shape)}",
            f"give a value of the input's shape, or store {spec.name} with its samples and a batch_axis",
        )
    _check_dtype(value, spec, where)


def _check_dtype(array: np.ndarray, spec: TensorSpec, where: str) -> None:
    if np.dtype(array.dtype) != np.dtype(spec.dtype):
        raise CalibrationError(
            f"{where}: dtype {array.dtype}, the model expects {spec.dtype}",
            f"convert it, e.g. array.astype(numpy.{spec.dtype})",
        )


def _check_array(array: np.ndarray, spec: TensorSpec, dataset: Dataset, role: str, layout: InputLayout | None) -> None:
    where = f"{role} data {dataset.source}, input {spec.name!r}"
    if len(array) != len(dataset):
        raise CalibrationError(
            f"{where}: {len(array)} samples, other inputs have {len(dataset)}",
            "each array holds the samples along its input's batch axis (axis 0 unless a spec says otherwise: "
            f"--input {spec.name}:batch_axis=N)",
        )
    _check_dtype(array, spec, where)
    axis = 0 if layout is None else layout.batch_axis
    per_sample = array.shape[1:]
    expected = spec.shape if axis is None else spec.shape[:axis] + spec.shape[axis + 1 :]
    batch_ok = axis is None or (axis < len(spec.shape) and (isinstance(spec.shape[axis], str) or spec.shape[axis] == 1))
    if not batch_ok or not TensorSpec(spec.name, spec.dtype, expected).fits(per_sample):
        stored = "its first axis counts samples" if axis is None else f"samples along axis {axis}"
        raise CalibrationError(
            f"{where}: samples of shape {list(per_sample)} ({stored}, array {list(_stored_shape(array, axis))}) "
            f"do not fit the model's input shape {list(spec.shape)}",
            _fit_hint(spec, axis),
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise CalibrationError(f"{where}: {bad} NaN/inf value(s)", "clean or drop those samples")


def _stored_shape(array: np.ndarray, axis: int | None) -> tuple[int, ...]:
    return array.shape if not axis or axis >= array.ndim else np.moveaxis(array, 0, axis).shape


def _fit_hint(spec: TensorSpec, axis: int | None) -> str:
    if not spec.shape:
        return f"{spec.name} is a scalar: store one value (numpy.{spec.dtype}(…)), or --input {spec.name}:constant=…"
    if axis is None:
        return "the first axis counts samples; each sample must have the model's input shape"
    return (
        f"the samples lie along axis {axis}, the rest must match the model's input; for another batch axis "
        f"give --input {spec.name}:batch_axis=N (recipe `[inputs] {spec.name} = {{batch_axis = N}}`)"
    )


def _check_labels(dataset: Dataset, role: str) -> None:
    if dataset.labels is None:
        return
    if dataset.labels.shape != (len(dataset),) or dataset.labels.dtype.kind not in "iu":
        raise CalibrationError(
            f"{role} data {dataset.source}: labels must be integers of shape [{len(dataset)}], "
            f"got {dataset.labels.dtype}{list(dataset.labels.shape)}"
        )

"""Calibration data + input specs → one example value per key, for exporting a model whose file does not
record its inputs (TorchScript): a tensor holds one sample in the model's layout, a constant its value.

The model's signature is not known yet (export produces it), so the layout comes from the specs given and
the data's own `edgeml_inputs` entry; otherwise a rank-0 array is a constant and the samples lie on axis 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.calibration.input_layout import SPEC_KEY, InputSpec, parse_input_specs
from edgeml.calibration.read_npz import LABEL_KEYS
from edgeml.calibration.recurrence import SEQUENCES_KEY
from edgeml.errors import CalibrationError

__all__ = ["Example", "example_inputs", "torch_examples"]


@dataclass(frozen=True)
class Example:
    value: np.ndarray  # one sample in the model's layout (batch size 1), or the constant
    batch_axis: int | None  # None: a constant, or an input without a batch axis

    @property
    def is_constant(self) -> bool:
        return self.batch_axis is None


def example_inputs(spec: str, given: dict[str, InputSpec]) -> dict[str, Example]:
    """{key: Example} in the data's key order, labels left out."""
    arrays = _arrays(spec)
    specs = parse_input_specs(arrays.pop(SPEC_KEY, None), f"{spec}, entry {SPEC_KEY!r}") | given
    examples = {name: _example(name, array, specs.get(name)) for name, array in arrays.items()}
    for name, s in specs.items():
        if name not in examples and s.constant is not None:
            examples[name] = Example(np.asarray(s.constant), None)
    return examples


def torch_examples(data: Dataset) -> dict[str, Example]:
    """The first sample of a read Dataset as examples (constants included), in its input order."""
    feed = data.feed(slice(0, 1))
    return {k: Example(v, None if k in data.constants else data.batch_axes.get(k, 0)) for k, v in feed.items()}


def _arrays(spec: str) -> dict[str, np.ndarray]:
    from edgeml.calibration.read_callable import read_callable
    from edgeml.importing import looks_like_callable_spec

    if looks_like_callable_spec(spec):
        return dict(read_callable(spec, ()).inputs)
    try:
        with np.load(spec, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if k not in LABEL_KEYS and k != SEQUENCES_KEY}
    except (OSError, ValueError) as exc:
        raise CalibrationError(
            f"cannot read {spec} as .npz for the model's example inputs: {exc}",
            "a TorchScript model needs an .npz (or module:function) whose keys are its forward() arguments",
        ) from exc


def _example(name: str, array: np.ndarray, spec: InputSpec | None) -> Example:
    if spec is not None and spec.constant is not None:
        return Example(np.asarray(spec.constant, dtype=array.dtype), None)
    if array.ndim == 0:
        return Example(array, None)
    axis = 0 if spec is None else spec.batch_axis
    if axis is None:
        return Example(array[0], None)
    if axis >= array.ndim:
        raise CalibrationError(f"input {name!r}: batch_axis {axis} does not exist in its array {list(array.shape)}")
    return Example(np.take(array, [0], axis=axis), axis)

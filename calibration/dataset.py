"""A calibration or evaluation set: named input arrays (samples first), optional labels, a digest.

Every reader produces one of these; the compiler only ever sees this type. `inputs` hold the samples along
axis 0 whatever the model's layout; `batches()` gives feeds in the model's layout: each input's samples
moved back to its batch axis (a state `[2, batch, 128]` gets `[2, k, 128]`), an input without a batch axis
fed one sample at a time, and the constants (a sample rate) added to every feed. A stateful model's data
also says which inputs are fed back from an output (`recurrent`, see `recurrence`) and where its ordered
sequences start (`sequence_ids`); `edgeml.compiler.closed_loop` runs it that way.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeml.calibration.recurrence import sequence_bounds

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    source: str = ""
    preprocessing: dict[str, Any] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    batch_axes: dict[str, int | None] = field(default_factory=dict)  # model-layout axis; absent: 0; None: none
    constants: dict[str, np.ndarray] = field(default_factory=dict)  # fed unchanged with every sample
    layouts: tuple[Any, ...] = ()  # the InputLayout of each model input, as decided when it was read
    recurrent: dict[str, Any] = field(default_factory=dict)  # input → Recurrence: fed back from an output
    sequence_ids: np.ndarray | None = None  # one id per sample; a new sequence wherever it changes

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values()))) if self.inputs else 0

    def sample(self, n: int | None, seed: int = 0) -> Dataset:
        """A seeded random subset of at most `n` samples, in their original order (None: all)."""
        if n is None or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return self.take(idx)

    def take(self, idx: np.ndarray | slice) -> Dataset:
        labels = None if self.labels is None else self.labels[idx]
        inputs = {k: v[idx] for k, v in self.inputs.items()}
        ids = None if self.sequence_ids is None else self.sequence_ids[idx]
        return dataclasses.replace(self, inputs=inputs, labels=labels, sequence_ids=ids)

    def sequences(self) -> list[tuple[int, int]]:
        """[start, stop) of each ordered sequence (all samples are one when the data names none)."""
        return sequence_bounds(self.sequence_ids, len(self))

    def open_loop(self) -> Dataset:
        """The same samples fed as stored, every state included (no output fed back)."""
        return dataclasses.replace(self, recurrent={}) if self.recurrent else self

    @property
    def batchable(self) -> bool:
        """False when some input's samples are not on axis 0 (a state on axis 1, an input without a batch
        axis): then every feed holds one sample, so outputs joined along axis 0 line up whatever their layout."""
        return all(self.batch_axes.get(k, 0) == 0 for k in self.inputs)

    def batches(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        """Feeds of up to `size` samples in the model's layout (one sample each when not `batchable`)."""
        size = size if self.batchable else 1
        for start in range(0, len(self), size):
            yield self.feed(slice(start, start + size))

    def feed(self, idx: slice) -> dict[str, np.ndarray]:
        """The samples `idx` as one feed in the model's layout, constants included."""
        feed = {k: self._model_layout(k, v[idx]) for k, v in self.inputs.items()}
        return feed | {k: np.asarray(v) for k, v in self.constants.items()}

    def _model_layout(self, name: str, chunk: np.ndarray) -> np.ndarray:
        axis = self.batch_axes.get(name, 0)
        if axis is None:  # NOTE: a 0-d array, not a numpy scalar: runtimes take arrays only
            return np.asarray(chunk[0])
        return chunk if axis == 0 else np.moveaxis(chunk, 0, axis)

    def digest(self) -> str:
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        """sha256 over names, dtypes, shapes and bytes of inputs and labels: identifies the data exactly."""
        h = hashlib.sha256()
        arrays = dict(self.inputs)
        if self.labels is not None:
            arrays["__labels__"] = self.labels
        arrays |= {f"__constant__/{k}": v for k, v in self.constants.items()}
        for name in sorted(arrays):
            a = np.asarray(arrays[name], order="C")
            h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        if any(v != 0 for v in self.batch_axes.values()):
            h.update(repr(sorted(self.batch_axes.items())).encode())
        if self.recurrent:  # NOTE: closed-loop evaluation of the same arrays gives other figures
            h.update(repr(sorted((k, r.output, r.initial) for k, r in self.recurrent.items())).encode())
            h.update(b"" if self.sequence_ids is None else np.ascontiguousarray(self.sequence_ids).tobytes())
        return h.hexdigest()

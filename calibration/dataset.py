"""A calibration or evaluation set: named input arrays (samples first), optional labels, a digest.

Every reader produces one of these; the compiler only ever sees this type.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    source: str = ""
    preprocessing: dict[str, Any] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

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
        return Dataset(inputs, labels, self.source, self.preprocessing, self.notes)

    def batches(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self), size):
            yield {k: v[start : start + size] for k, v in self.inputs.items()}

    def digest(self) -> str:
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        """sha256 over names, dtypes, shapes and bytes of inputs and labels: identifies the data exactly."""
        h = hashlib.sha256()
        arrays = dict(self.inputs)
        if self.labels is not None:
            arrays["__labels__"] = self.labels
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        return h.hexdigest()

"""A manifest's `reference_profile` → the bins the agent counts live traffic over, and the reference counts
its drift scores compare against.

Inputs: per input, the `axis` its features lie along (None: the whole tensor) and per feature the inner
bin `edges` and reference `counts` (edgeml.drift.bin_counts makes len(edges) + 1 bins). Outputs: a
classifier (`kind: "classes"`) has `class_counts` and a top-1 `confidence` histogram; any other output
(`kind: "values"`) one whole-tensor histogram. Entries the agent cannot use (malformed, or past the
telemetry limits of 64 features, 256 bins, 1000 classes) are skipped with a warning: drift telemetry is
best effort, serving the model is not.

On the predict path `snapshot` copies each profiled input (the caller may reuse its buffers), keeping at
most `max_elements` values of a large one (a strided subsample of the first batch item). A copy is kept as
`Frozen`: the array's bytes (C order), dtype and shape. `ndarray.tobytes` is several times cheaper than
`ndarray.copy` for the small inputs where the predict path's cost shows, and the telemetry thread joins
many calls' bytes into one array with a single `np.frombuffer` (`thaw_joined`, `thaw_flat`), cheaper than
concatenating arrays. Object arrays (pointers, not values) are not kept.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Frozen", "InputBins", "OutputBins", "ReferenceBins", "thaw", "thaw_flat", "thaw_joined"]

log = logging.getLogger(__name__)

MAX_FEATURES = 64
MAX_BINS = 256
MAX_CLASSES = 1000
SNAPSHOT_ELEMENTS = 4096

Frozen = tuple[bytes, np.dtype, tuple[int, ...]]  # an input as the predict path keeps it: data, dtype, shape
_NDARRAY = np.ndarray


@dataclass(frozen=True)
class InputBins:
    name: str
    axis: int | None
    edges: tuple[np.ndarray, ...]  # per feature, float64 inner edges
    reference: tuple[np.ndarray, ...]  # per feature, reference counts (len(edges) + 1)


@dataclass(frozen=True)
class OutputBins:
    name: str
    kind: str  # "classes" | "values"
    class_reference: np.ndarray | None = None
    confidence_edges: np.ndarray | None = None
    confidence_reference: np.ndarray | None = None
    value_edges: np.ndarray | None = None
    value_reference: np.ndarray | None = None

    @property
    def classes(self) -> int:
        return 0 if self.class_reference is None else len(self.class_reference)


@dataclass(frozen=True)
class ReferenceBins:
    inputs: tuple[InputBins, ...] = ()
    outputs: tuple[OutputBins, ...] = ()
    max_elements: int = SNAPSHOT_ELEMENTS
    _only: str | None = field(default=None, init=False, repr=False, compare=False)  # the one profiled input

    def __post_init__(self) -> None:
        object.__setattr__(self, "_only", self.inputs[0].name if len(self.inputs) == 1 else None)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> ReferenceBins:
        profile = manifest.get("reference_profile")
        if not isinstance(profile, dict):
            return cls()
        inputs = _entries(profile.get("inputs"), _input_bins)
        outputs = _entries(profile.get("outputs"), _output_bins)
        return cls(tuple(inputs), tuple(outputs))

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.inputs)

    def snapshot(self, feeds: Mapping[str, Any]) -> tuple[Frozen | None, ...]:
        """Frozen copies of the profiled inputs (subsampled when large), in `inputs` order; None where absent."""
        if self._only is not None:  # NOTE: the common case, kept to one lookup and one copy (predict path)
            x = feeds.get(self._only)
            if type(x) is _NDARRAY and x.size <= self.max_elements:
                dtype = x.dtype
                if not dtype.hasobject:
                    return ((x.tobytes(), dtype, x.shape),)
        return tuple(_snapshot(feeds.get(b.name), b.axis, self.max_elements) for b in self.inputs)


def thaw(frozen: Frozen) -> np.ndarray:
    """A snapshot back as a (read-only) array equal to the input it was taken from."""
    data, dtype, shape = frozen
    return np.frombuffer(data, dtype).reshape(shape)


def thaw_flat(frozen: list[Frozen]) -> np.ndarray:
    """Every value of the snapshots, in order, as one flat array (mixed dtypes upcast as np.concatenate does)."""
    dtype = frozen[0][1]
    if all(f[1] == dtype for f in frozen):
        return np.frombuffer(b"".join(f[0] for f in frozen), dtype)
    return np.concatenate([thaw(f).reshape(-1) for f in frozen])


def thaw_joined(frozen: list[Frozen]) -> np.ndarray:
    """Snapshots of one dtype whose shapes differ at most in the first (batch) dimension → one array, as
    `np.concatenate` along axis 0 would make it; ValueError when they do not fit together."""
    dtype, inner = frozen[0][1], frozen[0][2][1:]
    if any(f[1] != dtype or f[2][1:] != inner or not f[2] for f in frozen):
        raise ValueError("snapshots of different dtypes or shapes")
    return np.frombuffer(b"".join(f[0] for f in frozen), dtype).reshape(-1, *inner)


def _entries(table: Any, parse: Any) -> list[Any]:
    if not isinstance(table, dict):
        return []
    found = []
    for name, entry in list(table.items())[:64]:
        try:
            parsed = parse(str(name), entry)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            log.warning("reference profile entry %r is unusable (%s); no drift telemetry for it", name, exc)
            continue
        if parsed is not None:
            found.append(parsed)
    return found


def _histogram(entry: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    edges = np.asarray(entry["edges"], dtype=np.float64).reshape(-1)
    counts = np.asarray(entry["counts"], dtype=np.int64).reshape(-1)
    if len(counts) != len(edges) + 1 or len(counts) > MAX_BINS or np.any(np.diff(edges) < 0):
        raise ValueError(f"{len(edges)} edges and {len(counts)} counts do not make a histogram")
    return edges, counts


def _input_bins(name: str, entry: Mapping[str, Any]) -> InputBins:
    axis = entry.get("axis")
    if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int)):
        raise ValueError(f"axis {axis!r} is not an integer")
    features = [_histogram(f) for f in entry["features"]][:MAX_FEATURES]
    return InputBins(name, axis, tuple(e for e, _ in features), tuple(c for _, c in features))


def _output_bins(name: str, entry: Mapping[str, Any]) -> OutputBins | None:
    if entry.get("kind") == "classes":
        classes = np.asarray(entry["class_counts"], dtype=np.int64).reshape(-1)
        if not 1 <= len(classes) <= MAX_CLASSES:
            raise ValueError(f"{len(classes)} classes, at most {MAX_CLASSES}")
        edges, counts = _histogram(entry["confidence"])
        return OutputBins(name, "classes", classes, edges, counts)
    features = entry["features"]
    if len(features) != 1:
        return None  # per-feature output profiles are not counted (the compiler builds none)
    edges, counts = _histogram(features[0])
    return OutputBins(name, "values", value_edges=edges, value_reference=counts)


def _snapshot(x: Any, axis: int | None, max_elements: int) -> Frozen | None:
    if x is None:
        return None
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.hasobject:
        return None
    kept = x if x.size <= max_elements else _subsample(x, axis, max_elements)
    return kept.tobytes(), kept.dtype, kept.shape


def _subsample(x: np.ndarray, axis: int | None, max_elements: int) -> np.ndarray:
    """A strided view of at most ~max_elements values that keeps every feature along `axis`."""
    if axis is None:
        flat = x.reshape(-1)
        return flat[:: math.ceil(flat.size / max_elements)]
    index = [slice(None)] * x.ndim
    if axis != 0 and x.ndim > 1:
        index[0] = slice(0, 1)  # the first sample of the batch
    rest = [d for d in range(x.ndim) if d != axis and not (d == 0 and axis != 0)]
    size = math.prod(x.shape[d] for d in rest) * x.shape[axis]
    if rest and size > max_elements:
        step = math.ceil((size / max_elements) ** (1 / len(rest)))
        for d in rest:
            index[d] = slice(None, None, step)
    return x[tuple(index)]

"""The calls one model served during one telemetry period → latency sketch, counts, drift and output
histograms over the manifest's reference bins, accuracy from feedback, and a reservoir of raw samples.

`fold` takes a list of finished calls and does the numpy work once for the whole list (the calls' input
snapshots joined into one array, one `searchsorted` per feature), off the predict path. It returns each
call's top-1 class per classifier output, which the collector keeps for a while so that `feedback` can
score it.
"""

from __future__ import annotations

import base64
import logging
import random
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from edgeml.device_agent.serving.serving_model import ServingModel
from edgeml.device_agent.telemetry.reference_bins import Frozen, InputBins, OutputBins, thaw, thaw_flat, thaw_joined
from edgeml.drift import bin_counts, jensen_shannon, psi, top1_confidence
from edgeml.sketches import DDSketch

__all__ = ["Call", "ModelPeriod"]

log = logging.getLogger(__name__)


class Call(NamedTuple):
    """One finished predict: `outputs` is None when the model raised. The predict path appends plain
    tuples in this field order (cheaper to build); the collector reads them with `Call._make`."""

    request_id: Any
    serving: ServingModel
    latency_s: float
    snapshots: tuple[Frozen | None, ...]  # ReferenceBins.snapshot: each profiled input's bytes, dtype, shape
    outputs: dict[str, np.ndarray] | None


class ModelPeriod:
    def __init__(self, serving: ServingModel, start: float, alpha: float, max_samples: int = 0,
                 sample_max_bytes: int = 0) -> None:  # fmt: skip
        self.serving = serving
        self.start = start
        self.latency_ms = DDSketch(alpha)
        self.calls = self.errors = self.dropped = 0
        bins = serving.bins
        self.input_counts = [[np.zeros(len(e) + 1, np.int64) for e in b.edges] for b in bins.inputs]
        self.class_counts = [np.zeros(o.classes, np.int64) for o in bins.outputs]
        self.confidence_counts = [_zeros(o.confidence_edges) for o in bins.outputs]
        self.value_counts = [_zeros(o.value_edges) for o in bins.outputs]
        self.accuracy: dict[str, list[int]] = {}  # output → [labelled, correct]
        self.samples: list[dict[str, Any]] = []
        self._max_samples, self._sample_max_bytes, self._eligible = max_samples, sample_max_bytes, 0

    def fold(self, calls: Sequence[Call]) -> dict[Any, dict[str, np.ndarray]]:
        """Count `calls` (all served by this model); return request id → {output: top-1 per row}."""
        for call in calls:
            self.latency_ms.add(call.latency_s * 1000.0)
        ok = [c for c in calls if c.outputs is not None]
        self.calls += len(calls)
        self.errors += len(calls) - len(ok)
        if not ok:
            return {}
        for i, b in enumerate(self.serving.bins.inputs):
            self._count_input(i, b, [c.snapshots[i] for c in ok if c.snapshots[i] is not None])
        top1 = {}
        for i, o in enumerate(self.serving.bins.outputs):
            arrays = [c.outputs.get(o.name) for c in ok]  # type: ignore[union-attr]
            if any(a is None for a in arrays):
                continue
            if o.kind == "classes":
                top1[o.name] = self._count_classes(i, o, arrays)
            else:
                self.value_counts[i] += _bins(arrays, None, o.value_edges)  # type: ignore[arg-type]
        self._sample(ok)
        return _per_call(ok, top1)

    def score(self, output: str, predicted: np.ndarray, label: Any) -> None:
        """Feedback: count how many rows of one call's `predicted` classes match `label`."""
        labels = np.asarray(label).reshape(-1)
        if labels.size != predicted.size:
            raise ValueError(f"{labels.size} label(s) for a request with {predicted.size} prediction(s)")
        tally = self.accuracy.setdefault(output, [0, 0])
        tally[0] += int(predicted.size)
        tally[1] += int(np.sum(predicted == labels))

    def drift_scores(self) -> dict[str, dict[int, tuple[float, float]]]:
        """input → feature → (PSI, Jensen–Shannon in bits) against the reference, for features seen."""
        scores: dict[str, dict[int, tuple[float, float]]] = {}
        for b, counts in zip(self.serving.bins.inputs, self.input_counts, strict=True):
            for f, (ref, seen) in enumerate(zip(b.reference, counts, strict=True)):
                if seen.sum() > 0:
                    scores.setdefault(b.name, {})[f] = (psi(ref, seen), jensen_shannon(ref, seen))
        return scores

    def output_scores(self) -> dict[str, tuple[float, float]]:
        """classifier output → (PSI, Jensen–Shannon) of its class distribution against the reference."""
        return {
            o.name: (psi(o.class_reference, seen), jensen_shannon(o.class_reference, seen))
            for o, seen in zip(self.serving.bins.outputs, self.class_counts, strict=True)
            if o.kind == "classes" and seen.sum() > 0
        }

    # ---- counting ---------------------------------------------------------------------------------------

    def _count_input(self, i: int, b: InputBins, snapshots: list[Frozen]) -> None:
        if not snapshots:
            return
        try:
            for f, counts in enumerate(_feature_counts(snapshots, b)):
                self.input_counts[i][f] += counts
        except (ValueError, IndexError, TypeError) as exc:
            log.debug("input %r does not fit its reference bins (%s); not counted", b.name, exc)

    def _count_classes(self, i: int, o: OutputBins, arrays: list[np.ndarray]) -> np.ndarray | None:
        try:
            y = np.concatenate([a.reshape(-1, a.shape[-1]) for a in arrays], axis=0)
        except (ValueError, IndexError):
            return None
        if y.shape[-1] != o.classes:
            return None
        top1 = y.argmax(axis=1)
        self.class_counts[i] += np.bincount(top1, minlength=o.classes)
        self.confidence_counts[i] += bin_counts(top1_confidence(y), o.confidence_edges)  # type: ignore[arg-type]
        return top1

    def _sample(self, calls: list[Call]) -> None:
        for call in calls if self._max_samples else ():
            snapshots = call.snapshots
            if any(s is None for s in snapshots) or sum(len(s[0]) for s in snapshots) > self._sample_max_bytes:
                continue
            self._eligible += 1
            if len(self.samples) < self._max_samples:
                self.samples.append(_sample(call))
            elif (j := random.randrange(self._eligible)) < self._max_samples:
                self.samples[j] = _sample(call)


def _zeros(edges: np.ndarray | None) -> np.ndarray | None:
    return None if edges is None else np.zeros(len(edges) + 1, np.int64)


def _feature_counts(snapshots: list[Frozen], b: InputBins) -> list[np.ndarray]:
    if b.axis is None:
        return [bin_counts(thaw_flat(snapshots), b.edges[0])] if b.edges else []
    try:
        per_feature = np.swapaxes(thaw_joined(snapshots), 0, b.axis)
        return [bin_counts(per_feature[f].reshape(-1), e) for f, e in enumerate(b.edges)]
    except ValueError:  # calls with different shapes or dtypes: count them one by one
        totals = [np.zeros(len(e) + 1, np.int64) for e in b.edges]
        for a in map(thaw, snapshots):
            per_feature = np.swapaxes(a, 0, b.axis)
            for f, e in enumerate(b.edges):
                totals[f] += bin_counts(per_feature[f].reshape(-1), e)
        return totals


def _bins(arrays: list[np.ndarray], axis: None, edges: np.ndarray) -> np.ndarray:
    return bin_counts(np.concatenate([np.asarray(a).reshape(-1) for a in arrays]), edges)


def _per_call(calls: list[Call], top1: dict[str, np.ndarray | None]) -> dict[Any, dict[str, np.ndarray]]:
    result: dict[Any, dict[str, np.ndarray]] = {c.request_id: {} for c in calls}
    for name, rows in top1.items():
        if rows is None:
            continue
        offset = 0
        for c in calls:
            out = c.outputs[name]  # type: ignore[index]
            n = out.size // out.shape[-1] if out.ndim else 1
            result[c.request_id][name] = rows[offset : offset + n]
            offset += n
    return result


def _sample(call: Call) -> dict[str, Any]:
    inputs = {
        b.name: {"dtype": dtype.name, "shape": list(shape), "data": base64.b64encode(data).decode()}
        for b, (data, dtype, shape) in zip(call.serving.bins.inputs, call.snapshots, strict=True)
    }
    return {"request_id": str(call.request_id), "inputs": inputs}

"""Labelled data + the drift a fleet reported → the same samples, moved to look like the drifted traffic.

Devices report histograms over the reference bins, not raw samples (those leave a device only when it is
configured to send them). A training hook can still learn from the drift: each value of the drifted feature
is moved, with the smallest change of distribution that does it, from a bin that holds more than the
devices saw into a bin that holds less (uniformly within the bin), so the feature's histogram over the
reference bins becomes the devices' one. Labels are kept; the samples are the hook's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeml.drift import bin_counts

__all__ = ["drifted_histogram", "resample_like"]


def drifted_histogram(evidence_dir: str | Path) -> dict[str, Any]:
    """From an exported request: the bin edges and the devices' summed counts over them."""
    with np.load(Path(evidence_dir) / "drift.npz", allow_pickle=False) as z:
        devices = [z[k] for k in z.files if k.startswith("device/") and z[k].size]
        return {"edges": z["bin_edges"].tolist(), "counts": np.sum(devices, axis=0).tolist() if devices else []}


def resample_like(
    x: np.ndarray, edges: list[float], counts: list[float], feature: int = 0, axis: int | None = 1,
    low: float | None = None, high: float | None = None, seed: int = 0,
) -> np.ndarray:  # fmt: skip
    """A copy of `x` whose `feature` (along `axis`; None: the whole tensor) has the histogram `counts` over
    `edges`. `low`/`high` bound the two open outer bins (default: the data's own range)."""
    rng = np.random.default_rng(seed)
    out = np.array(x, copy=True)
    view = np.moveaxis(out, axis, 0)[feature] if axis is not None else out
    flat = view.reshape(-1)
    lo = float(flat.min()) if low is None else low
    hi = float(flat.max()) if high is None else high
    bounds = [lo, *edges, hi]
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), flat.astype(np.float64), side="right")
    have = bin_counts(flat, edges) / flat.size
    want = np.asarray(counts, dtype=np.float64) / max(float(np.sum(counts)), 1.0)
    move = np.where(have > 0, np.clip(1 - want / np.where(have > 0, have, 1), 0, 1), 0)
    gain = np.clip(want - have, 0, None)
    if gain.sum() <= 0:
        return out
    chosen = rng.random(flat.size) < move[idx]
    dest = rng.choice(len(gain), size=int(chosen.sum()), p=gain / gain.sum())
    left = np.asarray(bounds[:-1])[dest]
    right = np.maximum(np.asarray(bounds[1:])[dest], left)
    flat[chosen] = (left + rng.random(dest.size) * (right - left)).astype(flat.dtype)
    if axis is not None:
        np.moveaxis(out, axis, 0)[feature] = flat.reshape(view.shape)
    return out

"""Tensor values → histogram counts over reference bins, and PSI / Jensen–Shannon between two histograms.

The compiler builds the reference profile with these functions and the device agent counts live traffic
with the same ones (which axis holds the features, how a classifier's top-1 confidence is read), so a
device's histogram always lines up bin for bin with the manifest's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "MAX_FEATURES",
    "bin_counts",
    "feature_axis",
    "feature_views",
    "jensen_shannon",
    "psi",
    "quantile_edges",
    "top1_confidence",
]

MAX_FEATURES = 64  # above this, a tensor is profiled as a whole rather than per feature/channel
_EPS = 1e-4


def feature_axis(values: np.ndarray) -> int | None:
    """The axis a tensor is profiled along: 1 for float tensors with 2+ dims and at most MAX_FEATURES
    features/channels there, else None (the tensor is profiled as a whole)."""
    if values.dtype.kind != "f" or values.ndim < 2 or values.shape[1] > MAX_FEATURES:
        return None
    return 1


def top1_confidence(logits: np.ndarray) -> np.ndarray:
    """Max class probability per sample; softmax first unless the rows already look like probabilities."""
    x = logits.astype(np.float64)
    if not (x.min() >= 0 and np.allclose(x.sum(axis=-1), 1.0, atol=1e-3)):
        x = np.exp(x - x.max(axis=-1, keepdims=True))
        x /= x.sum(axis=-1, keepdims=True)
    return x.max(axis=-1)


def feature_views(values: np.ndarray, axis: int | None) -> list[np.ndarray]:
    """Split a batch tensor into one flat array per feature along `axis` (None: the whole tensor)."""
    if axis is None:
        return [values.reshape(-1)]
    moved = np.moveaxis(values, axis, 0)
    return [moved[i].reshape(-1) for i in range(moved.shape[0])]


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Inner bin edges at the reference data's quantiles (duplicates removed for spiky features)."""
    qs = np.quantile(values.astype(np.float64), np.linspace(0, 1, bins + 1)[1:-1])
    return [float(e) for e in np.unique(qs)]


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts over (−∞, e0), [e0, e1), …, [e_last, +∞): len(edges) + 1 bins."""
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), values.astype(np.float64), side="right")
    return np.bincount(idx, minlength=len(edges) + 1)


def _proportions(counts: Sequence[float]) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    p = c / total if total > 0 else np.full_like(c, 1.0 / len(c))
    return np.clip(p, _EPS, None)


def psi(reference: Sequence[float], observed: Sequence[float]) -> float:
    """Population stability index; above ~0.25 is commonly read as a major shift."""
    p, q = _proportions(reference), _proportions(observed)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference: Sequence[float], observed: Sequence[float]) -> float:
    """Jensen–Shannon divergence in bits, in [0, 1]."""
    p, q = _proportions(reference), _proportions(observed)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)
    return float(0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m)))

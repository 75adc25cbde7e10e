"""Float tensor vs quantized tensor, fed chunk by chunk → the sums one per-layer row is made of.

Every figure of a layer's row is a reduction over samples that adds up: SQNR from Σ(ref − out)² and Σref²,
the cosine as the mean of per-sample (per-row) cosines, the max error and float range as running extremes,
the clipping rate as a count. So the samples can stream through in chunks and give the same row as all of
them stacked at once (within float rounding): a chunk is dropped once added.

`add` takes the values of one feed (or several stacked): the rows a cosine is taken over are their axis 0,
as when every feed's values are joined along the batch (layer_numerics.join_samples). Where the feeds'
layouts differ (a sequence-first tensor whose batch is not axis 0), joining flattens everything into one row;
here the whole-tensor sums give that one row's cosine.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CAP_DB", "LayerStats"]

CAP_DB = 200.0


class LayerStats:
    def __init__(self, int8_range: tuple[float, float] | None) -> None:
        self.int8_range = int8_range
        self.count = 0  # values seen
        self.noise = self.signal = 0.0
        self.max_abs_err = 0.0
        self.float_min, self.float_max = math.inf, -math.inf
        self.clipped = 0
        self.row_cosines, self.rows = 0.0, 0
        self.dot = self.ref_sq = self.out_sq = 0.0  # NOTE: the one-row cosine where layouts differ
        self._layouts: set[tuple[int, ...] | None] = set()

    def add(self, ref: np.ndarray, out: np.ndarray) -> None:
        ref = np.asarray(ref).astype(np.float64)
        out = np.asarray(out).astype(np.float64).reshape(ref.shape)
        if not ref.size:
            return
        diff = ref - out
        self.count += ref.size
        self.noise += float((diff * diff).sum())
        self.signal += float((ref * ref).sum())
        self.max_abs_err = max(self.max_abs_err, float(np.abs(diff).max()))
        self.float_min, self.float_max = min(self.float_min, float(ref.min())), max(self.float_max, float(ref.max()))
        if self.int8_range is not None:
            lo, hi = self.int8_range
            half_step = (hi - lo) / 255 / 2
            self.clipped += int(((ref < lo - half_step) | (ref > hi + half_step)).sum())
        self._add_rows(ref, out)

    def _add_rows(self, ref: np.ndarray, out: np.ndarray) -> None:
        self._layouts.add(ref.shape[1:] if ref.ndim else None)
        r = ref.reshape(len(ref), -1) if ref.ndim else ref.reshape(1, 1)
        o = out.reshape(r.shape)
        nr, no = np.linalg.norm(r, axis=1), np.linalg.norm(o, axis=1)
        dot = (r * o).sum(axis=1)
        self.row_cosines += float(_cosines(dot, nr, no).sum())
        self.rows += len(r)
        self.dot += float(dot.sum())
        self.ref_sq += float((nr * nr).sum())
        self.out_sq += float((no * no).sum())

    def sqnr(self) -> float:
        if self.noise == 0:
            return CAP_DB
        return min(CAP_DB, 10 * math.log10(max(self.signal, 1e-30) / self.noise))

    def cosine(self) -> float:
        """The mean cosine of the rows (samples); one row over everything where the layouts differ."""
        if len(self._layouts) > 1:
            one = _cosines(np.array([self.dot]), np.sqrt([self.ref_sq]), np.sqrt([self.out_sq]))
            return float(one[0])
        return self.row_cosines / self.rows if self.rows else 1.0

    def clipping_rate(self) -> float:
        return self.clipped / self.count if self.count else 0.0


def _cosines(dot: np.ndarray, nr: np.ndarray, no: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / (nr * no)
    return np.where((nr == 0) & (no == 0), 1.0, np.nan_to_num(cos, nan=0.0))

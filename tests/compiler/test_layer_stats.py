"""A layer's figures summed chunk by chunk equal the batch formulas over every sample stacked at once."""

from __future__ import annotations

import numpy as np
import pytest

from edgeml.compiler.layer_numerics import cosine, join_samples, sqnr
from edgeml.compiler.layer_stats import CAP_DB, LayerStats


def _pair(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=shape).astype(np.float32)
    out = (ref + rng.normal(scale=0.05, size=shape)).astype(np.float32)
    out[1] = 0  # one sample wiped out: its cosine is 0, the mean must see it
    return ref, out


def _streamed(ref_parts, out_parts, int8_range=None) -> LayerStats:
    stats = LayerStats(int8_range)
    for r, o in zip(ref_parts, out_parts, strict=True):
        stats.add(r, o)
    return stats


@pytest.mark.parametrize("chunk", [1, 3, 7, 20])
def test_figures_summed_over_chunks_equal_the_batch_formulas(chunk):
    ref, out = _pair((20, 4, 5, 6))
    lo, hi = -1.5, 1.5
    stats = _streamed(
        [ref[i : i + chunk] for i in range(0, 20, chunk)], [out[i : i + chunk] for i in range(0, 20, chunk)], (lo, hi)
    )
    r64, o64 = ref.astype(np.float64), out.astype(np.float64)
    half_step = (hi - lo) / 255 / 2
    assert stats.sqnr() == pytest.approx(sqnr(ref, out), rel=1e-12)
    assert stats.cosine() == pytest.approx(cosine(r64, o64), rel=1e-12)
    assert stats.max_abs_err == np.abs(r64 - o64).max()
    assert (stats.float_min, stats.float_max) == (ref.min(), ref.max())
    clipped = ((r64 < lo - half_step) | (r64 > hi + half_step)).mean()
    assert stats.clipping_rate() == pytest.approx(clipped, rel=1e-12) and clipped > 0


def test_scalars_per_feed_are_rows_as_when_stacked():
    """Shape arithmetic gives one 0-d value per feed: stacked, each is one row of the cosine."""
    refs = [np.array(2.0), np.array(-1.0), np.array(3.0)]
    outs = [np.array(2.0), np.array(1.0), np.array(3.0)]  # the middle one flipped sign: cosine −1
    stats = _streamed(refs, outs)
    assert stats.cosine() == pytest.approx(cosine(join_samples(refs), join_samples(outs)))
    assert stats.sqnr() == pytest.approx(sqnr(join_samples(refs), join_samples(outs)))


def test_feeds_whose_layouts_differ_are_one_row_as_when_joined():
    """Sequence-first tensors ([T, N, C], N differing per feed) cannot be concatenated: one flattened row."""
    rng = np.random.default_rng(1)
    refs = [rng.normal(size=(4, n, 3)) for n in (1, 2, 3)]
    outs = [r + rng.normal(scale=0.1, size=r.shape) for r in refs]
    joined_ref, joined_out = join_samples(refs), join_samples(outs)
    assert joined_ref.shape[0] == 1  # what the batch path measured
    assert _streamed(refs, outs).cosine() == pytest.approx(cosine(joined_ref, joined_out), rel=1e-12)


def test_identical_tensors_read_the_cap_and_no_clipping():
    ref, _ = _pair((4, 8))
    stats = _streamed([ref[:2], ref[2:]], [ref[:2], ref[2:]], (float(ref.min()), float(ref.max())))
    assert stats.sqnr() == CAP_DB and stats.cosine() == pytest.approx(1.0) and stats.clipping_rate() == 0.0

"""DDSketch: quantiles within the stated relative error (merged or not), exact merges, compact round trips,
and clear refusals of values and payloads it cannot take."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgeml.sketches import DDSketch, SketchError

QUANTILES = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)


def _sketch(values, alpha=0.01, max_buckets=2048) -> DDSketch:
    s = DDSketch(alpha, max_buckets)
    for v in values:
        s.add(float(v))
    return s


def _exact(values: np.ndarray, q: float) -> float:
    return float(np.sort(values)[math.floor(q * (len(values) - 1))])


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("alpha", [0.01, 0.02])
def test_merged_quantiles_are_within_alpha_of_exact(seed, alpha):
    rng = np.random.default_rng(seed)
    parts = [rng.lognormal(mean=rng.uniform(-1, 3), sigma=rng.uniform(0.3, 1.5), size=n) for n in (3000, 500, 7)]
    merged = DDSketch(alpha)
    for part in parts:
        merged.merge(_sketch(part, alpha))
    everything = np.concatenate(parts)
    for q in QUANTILES:
        exact = _exact(everything, q)
        assert abs(merged.quantile(q) - exact) <= alpha * exact * (1 + 1e-9), (q, merged.quantile(q), exact)
    assert merged.count == len(everything)
    assert merged.min == everything.min() and merged.max == everything.max()
    assert merged.sum == pytest.approx(everything.sum())


def test_zeros_are_counted_apart_and_reported_exactly():
    s = _sketch([0.0, -0.0, 0.0, 5.0])
    assert s.zero == 3 and s.quantile(0.5) == 0.0 and s.quantile(1.0) == 5.0


@pytest.mark.parametrize("max_buckets", [2048, 32])  # 32: every merge collapses
def test_merge_is_associative_and_commutative(max_buckets):
    rng = np.random.default_rng(7)
    a, b, c = (_sketch(rng.lognormal(rng.uniform(-2, 2), 2, 400), max_buckets=max_buckets) for _ in range(3))
    left = a.copy()
    left.merge(b)
    left.merge(c)
    bc = b.copy()
    bc.merge(c)
    right = a.copy()
    right.merge(bc)
    rev = c.copy()
    rev.merge(b)
    rev.merge(a)
    assert left.buckets == right.buckets == rev.buckets
    assert (left.count, left.zero, left.min, left.max) == (right.count, right.zero, right.min, right.max)
    assert left.sum == pytest.approx(right.sum)


def test_bucket_count_stays_bounded_and_high_quantiles_stay_accurate():
    rng = np.random.default_rng(3)
    values = rng.lognormal(0, 4, 20000)  # spans ~1e-7 … 1e7: ~1600 buckets at 1 %
    s = _sketch(values, max_buckets=512)  # keeps a 1:27000 range below the max apart
    assert len(s.buckets) == 512
    for q in (0.99, 0.999, 1.0):
        assert abs(s.quantile(q) - _exact(values, q)) <= 0.01 * _exact(values, q) * (1 + 1e-9)
    merged = s.copy()
    merged.merge(_sketch(rng.lognormal(0, 4, 5000), max_buckets=512))
    assert len(merged.buckets) <= 512 and merged.count == 25000


def test_round_trip_is_exact_and_compact():
    rng = np.random.default_rng(11)
    s = _sketch(np.concatenate([rng.lognormal(2, 1, 5000), [0.0, 0.0]]))
    wire = json.dumps(s.to_dict(), separators=(",", ":"))
    back = DDSketch.from_dict(json.loads(wire))
    assert back == s and back.quantile(0.99) == s.quantile(0.99)
    assert len(wire) < 4096, len(wire)  # one per telemetry period
    assert s.to_dict()["alpha"] == 0.01  # the stated accuracy travels with it


def test_empty_sketch():
    s = DDSketch()
    assert s.count == 0 and s.quantile(0.5) is None and DDSketch.from_dict(s.to_dict()) == s


@pytest.mark.parametrize(
    ("value", "match"),
    [(float("nan"), "NaN"), (-1.0, "negative"), (float("inf"), "above"), (-float("inf"), "negative"), ("3", "number")],
)
def test_bad_values_are_refused_and_change_nothing(value, match):
    s = _sketch([1.0, 2.0])
    before = s.to_dict()
    with pytest.raises(SketchError, match=match):
        s.add(value)
    assert s.to_dict() == before


def test_refusals_are_also_value_errors():
    with pytest.raises(ValueError):
        DDSketch().add(float("nan"))


def test_merging_different_alphas_is_refused():
    with pytest.raises(SketchError, match=r"relative accuracy 0\.02 into one with 0\.01") as err:
        DDSketch(0.01).merge(DDSketch(0.02))
    assert "one alpha for the whole fleet" in str(err.value)


@pytest.mark.parametrize("q", [-0.1, 1.5, float("nan")])
def test_bad_quantile_is_refused(q):
    with pytest.raises(SketchError, match="outside"):
        _sketch([1.0]).quantile(q)


@pytest.mark.parametrize("alpha", [0.0, 0.5, -0.01, True, "0.01"])
def test_bad_alpha_is_refused(alpha):
    with pytest.raises(SketchError, match="alpha"):
        DDSketch(alpha)


def _good() -> dict:
    return _sketch([0.0, 1.0, 2.0, 40.0]).to_dict()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"schema": "other"}, "schema"),
        ({"v": 2}, "schema"),
        ({"alpha": 0.9}, "alpha"),
        ({"count": 5}, "count"),
        ({"counts": [1, 1]}, "keys"),
        ({"counts": [1, 0, 1]}, "positive"),
        ({"keys": [0, 0, 5]}, "positive"),
        ({"keys": [10**9, 1, 1]}, "outside"),
        ({"keys": ["0", 1, 1]}, "integer"),
        ({"min": 50.0}, "out of order"),
        ({"min": None}, "min"),
        ({"sum": -1.0}, "negative"),
        ({"zero": True}, "zero"),
    ],
)
def test_malformed_payloads_are_refused(change, match):
    with pytest.raises(SketchError, match=match):
        DDSketch.from_dict({**_good(), **change})


def test_non_dict_payload_is_refused():
    with pytest.raises(SketchError, match="JSON object"):
        DDSketch.from_dict([1, 2])

"""Latency values → a mergeable DDSketch whose quantiles are within a stated relative error α.

DDSketch (Masson, Rim, Lee; VLDB 2019). A value v > 0 is counted in bucket i = ⌈log_γ v⌉ with
γ = (1 + α) / (1 − α); the bucket reports 2γ^i / (γ + 1), which lies within relative error α of every value
in (γ^(i−1), γ^i]. With the default α = 0.01 every quantile comes back within 1 % of the exact one (the
"lower" quantile: the sorted value at index ⌊q·(n − 1)⌋). Merging adds bucket counts, so a sketch merged
from a thousand devices keeps the same bound.

Values are latencies: 0 ≤ v ≤ 1e200. Zero is counted apart; a negative value is refused (a latency is never
negative: it is a clock bug in the caller, and clamping it would hide that), and so are NaN and ±∞.

Buckets are sparse (index → count) and at most `max_buckets` (default 2048, which at α = 0.01 spans a
ratio of γ^2048 ≈ 6·10^17 between the smallest and largest value kept apart). Past that the lowest
buckets are folded into the lowest kept one, as DataDog's collapsing-lowest store does: the high
quantiles, the ones latency alarms read, stay exact to α.

Serialized form (`to_dict`, one per telemetry period, a few hundred bytes to a few KiB):
{"schema": "edgeml/ddsketch", "v": 1, "alpha": 0.01, "max_buckets": 2048, "count": n, "zero": z,
 "sum": s, "min": m, "max": M, "keys": [k0, d1, d2, …], "counts": [c0, c1, …]} where keys[0] is the
lowest bucket index and every further entry the gap (≥ 1) to the previous index.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from edgeml.errors import EdgemlError

__all__ = ["DEFAULT_ALPHA", "DEFAULT_MAX_BUCKETS", "DDSketch", "SketchError"]

DEFAULT_ALPHA = 0.01
DEFAULT_MAX_BUCKETS = 2048
SCHEMA = "edgeml/ddsketch"
VERSION = 1
MAX_VALUE = 1e200  # far past any latency, and far enough below float max that `sum` never overflows
_ALPHA_RANGE = (1e-4, 0.2)
_BUCKETS_RANGE = (16, 65536)
_MAX_COUNT = 1 << 53
_SMALLEST = 5e-324  # the smallest positive float: its bucket is the lowest there is


class SketchError(EdgemlError, ValueError):
    """A value a sketch refuses, sketches that cannot be merged, or a malformed serialized sketch."""


class DDSketch:
    """A mergeable quantile sketch with relative accuracy `alpha` and at most `max_buckets` buckets."""

    def __init__(self, alpha: float = DEFAULT_ALPHA, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        _check_alpha(alpha)
        _check_max_buckets(max_buckets)
        self.alpha = float(alpha)
        self.max_buckets = max_buckets
        self._gamma = (1 + self.alpha) / (1 - self.alpha)
        self._log_gamma = math.log(self._gamma)
        self._bins: dict[int, int] = {}
        self._floor: int | None = None  # set once buckets were folded: lower keys land here
        self.zero = 0
        self.count = 0
        self.sum = 0.0
        self.min: float | None = None
        self.max: float | None = None

    def add(self, value: float, count: int = 1) -> None:
        """Count `value` (a latency, 0 ≤ value ≤ 1e200) `count` times."""
        value = _checked_value(value)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise SketchError(f"sketch count {count!r} is not a positive integer", "pass count=1 or more")
        if value == 0.0:
            self.zero += count
        else:
            self._bump(self.key(value), count)
            self._collapse_if_needed()
        self._note(value, value, value * count, count)

    def key(self, value: float) -> int:
        """The bucket index of a positive value."""
        return math.ceil(math.log(value) / self._log_gamma)

    def value(self, key: int) -> float:
        """The value a bucket reports: within `alpha` of everything it holds."""
        return 2.0 * math.exp(key * self._log_gamma) / (self._gamma + 1.0)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 ≤ q ≤ 1) within relative error `alpha`; None for an empty sketch."""
        if not 0.0 <= q <= 1.0:  # also refuses NaN
            raise SketchError(f"quantile {q!r} is outside [0, 1]", "ask for e.g. 0.5, 0.95 or 0.99")
        if self.count == 0:
            return None
        if q in (0.0, 1.0):  # the extremes are kept exactly
            return self.min if q == 0.0 else self.max
        rank = q * (self.count - 1)
        if rank < self.zero:
            return 0.0
        seen = self.zero
        for key in sorted(self._bins):
            seen += self._bins[key]
            if seen > rank:
                return self._clamp(self.value(key))
        return self.max

    def merge(self, other: DDSketch) -> None:
        """Add every value counted in `other` to this sketch (same `alpha` required)."""
        if not isinstance(other, DDSketch):
            raise SketchError(f"cannot merge a {type(other).__name__} into a DDSketch")
        if other.alpha != self.alpha:
            raise SketchError(
                f"cannot merge a sketch with relative accuracy {other.alpha} into one with {self.alpha}",
                "configure one alpha for the whole fleet; sketches of different accuracy do not line up",
            )
        for key, n in other._bins.items():
            self._bump(key, n)
        self._collapse_if_needed()
        self.zero += other.zero
        if other.count:
            self._note(other.min, other.max, other.sum, other.count)  # type: ignore[arg-type]

    def copy(self) -> DDSketch:
        twin = DDSketch(self.alpha, self.max_buckets)
        twin.merge(self)
        twin._floor = self._floor
        return twin

    @property
    def buckets(self) -> Mapping[int, int]:
        """Bucket index → count (a copy; the zero bucket is `zero`)."""
        return dict(self._bins)

    def to_dict(self) -> dict[str, Any]:
        keys = sorted(self._bins)
        gaps = [b - a for a, b in itertools.pairwise(keys)]
        return {
            "schema": SCHEMA,
            "v": VERSION,
            "alpha": self.alpha,
            "max_buckets": self.max_buckets,
            "count": self.count,
            "zero": self.zero,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "keys": keys[:1] + gaps,
            "counts": [self._bins[k] for k in keys],
        }

    @classmethod
    def from_dict(cls, data: Any) -> DDSketch:
        """Rebuild a sketch from `to_dict` output, checking every field; SketchError names the bad one."""
        if not isinstance(data, dict):
            raise SketchError(f"a serialized sketch is a JSON object, not {type(data).__name__}")
        if data.get("schema") != SCHEMA or data.get("v") != VERSION:
            raise SketchError(
                f"sketch schema {data.get('schema')!r} v{data.get('v')!r} is not {SCHEMA} v{VERSION}",
                "upgrade the reader, or send sketches from a matching edgeml",
            )
        sketch = cls(_field(data, "alpha", float), _field(data, "max_buckets", int))
        keys = _keys(data, sketch)
        counts = [_positive(c, "counts") for c in _field(data, "counts", list)]
        if len(counts) != len(keys) or len(keys) > sketch.max_buckets:
            raise SketchError(f"sketch has {len(keys)} keys, {len(counts)} counts, at most {sketch.max_buckets}")
        sketch._bins = dict(zip(keys, counts, strict=True))
        sketch.zero = _field(data, "zero", int)
        _restore_totals(sketch, data)
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DDSketch):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        p50, p99 = self.quantile(0.5), self.quantile(0.99)
        return f"DDSketch(alpha={self.alpha}, count={self.count}, p50={p50}, p99={p99})"

    def _bump(self, key: int, n: int) -> None:
        if self._floor is not None and key < self._floor:
            key = self._floor
        self._bins[key] = self._bins.get(key, 0) + n

    def _collapse_if_needed(self) -> None:
        excess = len(self._bins) - self.max_buckets
        if excess <= 0:
            return
        keys = sorted(self._bins)
        floor = keys[excess]
        self._bins[floor] += sum(self._bins.pop(k) for k in keys[:excess])
        self._floor = floor

    def _note(self, lo: float, hi: float, total: float, n: int) -> None:
        self.count += n
        self.sum += total
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)

    def _clamp(self, value: float) -> float:
        assert self.min is not None and self.max is not None
        return min(max(value, self.min), self.max)


def _checked_value(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SketchError(f"sketch value {value!r} is not a number", "pass the latency as a float")
    v = float(value)
    if math.isnan(v):
        raise SketchError("sketch value is NaN", "time the call again; a NaN latency is a bug in the timer")
    if v < 0:
        raise SketchError(
            f"sketch value {v} is negative; a latency never is",
            "measure with time.perf_counter() or time.monotonic(), which never go backwards",
        )
    if v > MAX_VALUE:
        raise SketchError(f"sketch value {v} is above {MAX_VALUE:g} (or infinite)", "pass a finite latency")
    return v + 0.0  # -0.0 → 0.0


def _field(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value) if abs(value) <= MAX_VALUE else math.inf  # float() of a huge int overflows
    if isinstance(value, bool) or not isinstance(value, kind):
        raise SketchError(f"sketch field {name!r} is {value!r}, not a {kind.__name__}")
    if (kind is int and value < 0) or (kind is float and not (math.isfinite(value) and value >= 0)):
        raise SketchError(f"sketch field {name!r} is {value!r}: negative or not finite")
    return value


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _MAX_COUNT:
        raise SketchError(f"sketch {name} entry {value!r} is not a positive integer")
    return value


def _keys(data: dict[str, Any], sketch: DDSketch) -> list[int]:
    entries = _field(data, "keys", list)
    if entries and (isinstance(entries[0], bool) or not isinstance(entries[0], int)):
        raise SketchError(f"sketch keys[0] {entries[0]!r} is not an integer")
    keys = entries[:1]
    for gap in entries[1:]:
        keys.append(keys[-1] + _positive(gap, "keys"))
    lo, hi = sketch.key(_SMALLEST) - 1, sketch.key(MAX_VALUE) + 1
    if keys and not (lo <= keys[0] and keys[-1] <= hi):
        raise SketchError(f"sketch keys span [{keys[0]}, {keys[-1]}], outside [{lo}, {hi}] for alpha {sketch.alpha}")
    return keys


def _restore_totals(sketch: DDSketch, data: dict[str, Any]) -> None:
    count = _field(data, "count", int)
    if count != sketch.zero + sum(sketch._bins.values()):
        raise SketchError(f"sketch count {count} is not the sum of its bucket counts")
    sketch.count, sketch.sum = count, _field(data, "sum", float)
    if count == 0:
        if data.get("min") is not None or data.get("max") is not None:
            raise SketchError("an empty sketch has min and max null")
        return
    lo, hi = _field(data, "min", float), _field(data, "max", float)
    if not lo <= hi <= MAX_VALUE:
        raise SketchError(f"sketch min {lo} and max {hi} are out of order or above {MAX_VALUE:g}")
    sketch.min, sketch.max = lo, hi


def _check_alpha(alpha: Any) -> None:
    lo, hi = _ALPHA_RANGE
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not lo <= alpha <= hi:
        raise SketchError(f"sketch alpha {alpha!r} is outside [{lo}, {hi}]", "use the default 0.01 (1 %)")


def _check_max_buckets(max_buckets: Any) -> None:
    lo, hi = _BUCKETS_RANGE
    if isinstance(max_buckets, bool) or not isinstance(max_buckets, int) or not lo <= max_buckets <= hi:
        raise SketchError(f"sketch max_buckets {max_buckets!r} is outside [{lo}, {hi}]", "use the default 2048")

"""Interleaved latency measurement: several sessions timed in alternation on the same inputs.

These shared machines drift by up to 2× between runs, so models that are compared are never timed one
after the other: each round runs every session once, in a freshly shuffled (seeded) order — a fixed
rotation gives each model the same predecessor every round, which biased small models by ~3 % — and the
percentiles come from the rounds. Throughput and percentiles come from the same samples.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeml.runtimes import Session

__all__ = ["LatencyStats", "interleaved_latency", "interleaved_samples"]


@dataclass(frozen=True)
class LatencyStats:
    n: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    throughput_per_s: float

    @classmethod
    def from_samples(cls, samples_s: list[float], batch: int = 1) -> LatencyStats:
        a = np.asarray(samples_s) * 1000.0
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        return cls(len(a), float(p50), float(p90), float(p99), float(a.mean()), batch * 1000.0 / float(a.mean()))

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


def interleaved_latency(
    sessions: Mapping[str, Session],
    feeds: Mapping[str, Mapping[str, np.ndarray]],
    warmup: int = 10,
    min_rounds: int = 30,
    max_rounds: int = 20_000,
    max_seconds: float = 3.0,
) -> dict[str, LatencyStats]:
    """Time each session on its feeds; stop after `max_seconds` (but never before `min_rounds`)."""
    samples = interleaved_samples(sessions, feeds, warmup, min_rounds, max_rounds, max_seconds)
    return {name: LatencyStats.from_samples(samples[name], _batch(feeds[name])) for name in sessions}


def interleaved_samples(
    sessions: Mapping[str, Session],
    feeds: Mapping[str, Mapping[str, np.ndarray]],
    warmup: int = 10,
    min_rounds: int = 30,
    max_rounds: int = 20_000,
    max_seconds: float = 3.0,
) -> dict[str, list[float]]:
    """Per session, the seconds each round took, in round order (round i of every session ran together)."""
    names = list(sessions)
    for name in names:
        for _ in range(warmup):
            sessions[name].run(feeds[name])
    samples: dict[str, list[float]] = {name: [] for name in names}
    deadline = time.perf_counter() + max_seconds
    rng = random.Random(0)
    for round_no in range(max_rounds):
        for name in rng.sample(names, len(names)):
            start = time.perf_counter()
            sessions[name].run(feeds[name])
            samples[name].append(time.perf_counter() - start)
        if round_no + 1 >= min_rounds and time.perf_counter() > deadline:
            break
    return samples


def _batch(feed: Mapping[str, np.ndarray]) -> int:
    return int(next(iter(feed.values())).shape[0]) if feed else 1

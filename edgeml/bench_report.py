"""A `BenchResult` → the `result` object a device sends in its `bench_result` (and that the fleet stores,
tabulates and plots): `edgeml bench --json`'s fields, plus a DDSketch of each model's per-round latency
(for the distribution plot, 1 % relative accuracy), the machine's load and temperature where the OS
exposes them, and the runtime versions. Both the device agent and the simulated devices build it here,
so every device's figure has the same shape and meaning.
"""

from __future__ import annotations

import glob
import math
import os
from typing import Any

import numpy as np

from edgeml.benchmark import BenchResult
from edgeml.sketches import DDSketch

__all__ = ["device_result", "machine_load"]


def device_result(result: BenchResult, runtimes: dict[str, str], host: dict[str, Any] | None = None) -> dict[str, Any]:
    """The wire form of one device's measurement; `host` replaces this machine's CPU description (simulators)."""
    body = result.to_dict()
    if host is not None:
        body["host"] = host
    sketches = {name: _sketch(samples).to_dict() for name, samples in (result.samples_s or {}).items()}
    return body | {"latency_sketch_ms": sketches, "runtimes": dict(runtimes), "load": machine_load()}


def _sketch(samples_s: list[float]) -> DDSketch:
    """The samples (seconds) as a DDSketch in ms, one `add` per bucket rather than per sample (a simulator answers
    for hundreds of devices on one core): each bucket gets its values' mean, which lies in the same bucket, so
    counts and the sum are exact; min and max are set to the exact extremes."""
    sketch = DDSketch()
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    positive = ms[ms > 0]
    if len(positive) < len(ms):
        sketch.add(0.0, int(len(ms) - len(positive)))
    if len(positive):
        gamma = (1 + sketch.alpha) / (1 - sketch.alpha)
        keys = np.ceil(np.log(positive) / math.log(gamma)).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        ordered = positive[order]
        _, starts, counts = np.unique(keys[order], return_index=True, return_counts=True)
        for start, count in zip(starts, counts, strict=True):
            sketch.add(float(ordered[start : start + count].mean()), int(count))
        sketch.min, sketch.max = float(ms.min()), float(ms.max())
    return sketch


def machine_load() -> dict[str, float | None]:
    """1-minute load average and the hottest thermal zone in °C, each None where the OS does not say."""
    try:
        load1 = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        load1 = None
    temps = []
    for path in glob.glob("/sys/class/thermal/thermal_zone*/temp"):
        try:
            with open(path) as f:
                temps.append(int(f.read().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    return {"loadavg_1m": load1, "temperature_c": max(temps) if temps else None}

"""A `BenchResult` → the `result` object a device sends in its `bench_result` (and that the fleet stores,
tabulates and plots): `edgeml bench --json`'s fields, plus a DDSketch of each model's per-round latency
(for the distribution plot, 1 % relative accuracy), the machine's load and temperature where the OS
exposes them, and the runtime versions. Both the device agent and the simulated devices build it here,
so every device's figure has the same shape and meaning.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from edgeml.benchmark import BenchResult
from edgeml.sketches import DDSketch

__all__ = ["device_result", "machine_load"]


def device_result(result: BenchResult, runtimes: dict[str, str], host: dict[str, Any] | None = None) -> dict[str, Any]:
    """The wire form of one device's measurement; `host` replaces this machine's CPU description (simulators)."""
    body = result.to_dict()
    if host is not None:
        body["host"] = host
    sketches = {}
    for name, samples in (result.samples_s or {}).items():
        sketch = DDSketch()
        for s in samples:
            sketch.add(s * 1000.0)
        sketches[name] = sketch.to_dict()
    return body | {"latency_sketch_ms": sketches, "runtimes": dict(runtimes), "load": machine_load()}


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

"""Host measurements + the candidates' latency timed on a device → the measurements the decision judges speed
by: each candidate's device p50 in place of the host's, the host figure kept beside it (`host_latency`), and
where each was measured (`measured_on`).

The compiler never talks to a device itself: the caller injects the hook (`edgeml compile --measure-on` passes
one that runs fleet bench jobs). The hook gets one unsigned draft artifact folder per candidate (its files, the
self-test inputs and a draft `manifest.json`) and answers, per candidate, `{"latency": {"p50_ms", …},
"measured_on": {"device", "host", "runtimes"}}`; a device that does not answer raises (the compile fails).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeml.compiler.measure import FLOAT, Measurements
from edgeml.compiler.select_candidate import speed_reference
from edgeml.errors import EdgemlError
from edgeml.host import host_info

__all__ = ["LatencyOnDevice", "device_name", "speed_ordered", "with_device_latency"]

LatencyOnDevice = Callable[[dict[str, Path]], dict[str, dict[str, Any]]]


def speed_ordered(models: dict[str, Any], built: dict[str, Any], source: Any) -> dict[str, Any]:
    """The models the device times, the speed reference first (a bench job's baseline is its first model): the
    target's fp32 build, else the float source where it runs on the candidates' runtime (a pinned INT8)."""
    ref = speed_reference(models)
    if ref != FLOAT:
        return {ref: built[ref], **{n: b for n, b in built.items() if n != ref}}
    if {b.runtime for b in built.values()} != {source.runtime}:
        raise EdgemlError(
            "--measure-on needs a float model the device can run beside the candidates (the target's fp32 build, or "
            f"the float source on {source.runtime}); this compile has neither",
            "compile without --measure-on, or time the shipped artifact with `edgeml fleet bench`",
        )
    return {FLOAT: source, **built}


def with_device_latency(measured: Measurements, figures: dict[str, dict[str, Any]], threads: int) -> Measurements:
    """Each candidate's `latency` replaced by the device's, `host_latency` kept; the float source's too where the
    device timed it (it was the speed reference), else it stays a host figure and says so."""
    names = [n for n in measured.models if n != FLOAT or n in figures]
    missing = [n for n in names if n not in figures]
    if missing:
        raise EdgemlError(f"the device measured no latency for {', '.join(missing)}",
                          "every candidate must be timed on the same device for the decision")  # fmt: skip
    host = host_info().to_dict() | {"threads": threads}
    models = copy.deepcopy(measured.models)
    for name in names:
        m, f = models[name], figures[name]
        m["host_latency"] = m["latency"]
        m["latency"] = f["latency"]
        m["measured_on"] = {"latency": _where(f["measured_on"]), "host_latency": host}
    if FLOAT not in figures:
        models[FLOAT]["measured_on"] = {"latency": host}
    return dataclasses.replace(measured, models=models)


def device_name(models: dict[str, dict[str, Any]]) -> str | None:
    """`device ID` where the candidates' latency was measured on one, else None (the build host)."""
    where = next((m.get("measured_on", {}).get("latency", {}) for n, m in models.items() if n != FLOAT), {})
    return f"device {where['device']}" if "device" in where else None


def _where(measured_on: dict[str, Any]) -> dict[str, Any]:
    """The device id, its CPU and ISA as the device reported them, and its runtime versions."""
    host = measured_on.get("host", {})
    return {"device": measured_on["device"], **{k: host[k] for k in ("description", "cpu", "arch", "isa") if k in host},
            "runtimes": measured_on.get("runtimes", {})}  # fmt: skip

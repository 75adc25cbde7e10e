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


def speed_ordered(models: dict[str, Any], names: list[str]) -> list[str]:
    """The candidates with the speed reference first: a bench job's baseline is its first model."""
    ref = speed_reference(models)
    if ref == FLOAT:
        raise EdgemlError(
            "--measure-on needs a float build of the target's own runtime to compare the candidates with on the "
            "device; this target has none (speed is judged against the float source on the host)",
            "compile without --measure-on, or time the shipped artifact with `edgeml fleet bench`",
        )
    return [ref, *(n for n in names if n != ref)]


def with_device_latency(measured: Measurements, figures: dict[str, dict[str, Any]], threads: int) -> Measurements:
    """Each candidate's `latency` replaced by the device's, `host_latency` kept; the float source stays a host
    figure (it is the accuracy reference, never the speed one when the device measured)."""
    names = [n for n in measured.models if n != FLOAT]
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

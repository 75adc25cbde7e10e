"""`simulate` over several processes: one asyncio loop per process, each with its share of the devices (ids
numbered on from the previous share's), their reports summed into one.

One Python process carries about a thousand MQTT connections before its one core saturates; more devices
need more processes. Ctrl-C reaches every worker (the terminal signals the whole process group; a parent
that alone got it passes it on): each stops its devices and sends back the report so far, so an
interrupted run still reports what converged, what broke and what it cost in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import signal
from dataclasses import asdict
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edgeml.fleet.database import FleetError
from edgeml.fleet.simulation import SimulationReport, simulate

__all__ = ["simulate_processes"]

REPORT_WAIT_S = 60.0  # after the run: how long a worker may take to stop its devices and report


def simulate_processes(
    url: str, n: int, processes: int, target: str, fleet_key: Ed25519PublicKey, duration_s: float, **options: Any
) -> SimulationReport:
    """Run `n` devices split over `processes` worker processes (`simulate`'s `options` for each); the summed
    report. With one process it runs here."""
    if processes < 1 or processes > n:
        raise FleetError(f"--processes {processes} for {n} device(s)", "use 1 to the number of devices")
    if processes == 1:
        return asyncio.run(simulate(url, n, target, fleet_key, duration_s=duration_s, sigint_stops=True, **options))
    raw_key = fleet_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    shares = [n // processes + (k < n % processes) for k in range(processes)]
    context = multiprocessing.get_context("spawn")  # NOTE: no fork of a process holding threads and sockets
    results = context.Queue()
    workers = []
    for k, share in enumerate(shares):
        args = (url, share, target, raw_key, duration_s, options | {"first": sum(shares[:k]), "seed": k * 7919})
        workers.append(context.Process(target=_worker, args=(args, results), name=f"edgeml-sim-{k}", daemon=True))
    for w in workers:
        w.start()
    reports = _collect(workers, results, duration_s)
    return _merge(reports, n, processes)


def _worker(args: tuple, results) -> None:
    url, share, target, raw_key, duration_s, options = args
    key = Ed25519PublicKey.from_public_bytes(raw_key)
    report = asyncio.run(simulate(url, share, target, key, duration_s=duration_s, sigint_stops=True, **options))
    results.put(asdict(report))


def _collect(workers: list, results, duration_s: float) -> list[dict]:
    """Every worker's report; a Ctrl-C here is passed on to the workers, which then report what they have."""
    reports: list[dict] = []

    def pass_on(signum, frame) -> None:
        for w in workers:
            if w.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, pass_on)
    try:
        while len(reports) < len(workers):
            try:
                reports.append(results.get(timeout=1.0))
            except queue.Empty:
                if not any(w.is_alive() for w in workers) and results.empty():
                    break  # NOTE: a worker died without a report (killed, out of memory): report the rest
    finally:
        signal.signal(signal.SIGINT, previous)
        for w in workers:
            w.join(timeout=REPORT_WAIT_S)
    return reports


def _merge(reports: list[dict], n: int, processes: int) -> SimulationReport:
    merged = SimulationReport(n, processes=processes)
    summed = ("converged", "corrupt_installs", "received_bytes", "disconnects", "baseline_rss_mib", "peak_rss_mib")
    for r in reports:
        for name in summed:
            setattr(merged, name, getattr(merged, name) + r[name])
        merged.seconds = max(merged.seconds, r["seconds"])
        merged.interrupted = merged.interrupted or r["interrupted"]
        for version, count in r["versions"].items():
            merged.versions[version] = merged.versions.get(version, 0) + count
    missing = n - sum(sum(r["versions"].values()) for r in reports)
    if missing:
        merged.versions["no report (worker died)"] = missing
    return merged

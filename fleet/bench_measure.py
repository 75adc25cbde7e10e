"""A compile's candidates (unsigned draft artifact folders: files, self-test inputs, a draft manifest) → their
latency measured on one device of the fleet, through bench jobs: what `edgeml compile --measure-on DEVICE` hands
the compiler as its `latency_on_device` hook, called before the decision.

Each draft is signed with the fleet's key as a bench artifact (version `<version>-m<digest>`), published, and
timed on the device in one job per candidate, the first (the speed reference) as the baseline of every job, so
each ratio comes from one interleaved run. Every figure carries where it was measured: the device id, the
CPU/ISA the device reported and its runtime versions.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeml.artifact import write_artifact
from edgeml.fleet.bench_jobs import BenchSettings
from edgeml.fleet.database import FleetError

__all__ = ["measure_drafts"]


def measure_drafts(
    fleet: Any, device_id: str, drafts: dict[str, Path], seconds: float = 2.0, deadline_s: float = 120.0
) -> dict[str, dict[str, Any]]:
    """Unsigned draft artifact folders (a compile's candidates before its decision: files and a draft
    `manifest.json`) → their latency on the device, the first as every job's baseline; signed with the fleet's
    key to be published. What `compile_model(latency_on_device=…)` gets from `--measure-on`."""
    _check_device(fleet, device_id)
    with tempfile.TemporaryDirectory(prefix="edgeml-measure-") as tmp:
        specs = {n: _publish_draft(fleet, Path(folder), Path(tmp)) for n, folder in drafts.items()}
    return _timed(fleet, device_id, specs, seconds, deadline_s)


def _check_device(fleet: Any, device_id: str) -> None:
    if fleet.devices.get(device_id) is None:
        raise FleetError(f"--measure-on {device_id}: no such device", "see `edgeml fleet devices`")


def _timed(fleet: Any, device_id: str, specs: dict[str, str], seconds: float, deadline_s: float) -> dict:
    first = next(iter(specs.values()))
    out = {}
    for name, spec in specs.items():
        job = fleet.bench.create(spec, f"id={device_id}", BenchSettings(int(seconds * 1000), deadline_s=deadline_s),
                                 time.time(), baseline=first)  # fmt: skip
        row = fleet.bench.wait(job["id"])["results"][0]
        if row["state"] != "done":
            raise FleetError(f"{name} was not measured on device {device_id}: {row['state']} {row['reason']}".strip(),
                             f"is `edgeml fleet serve` running and {device_id} online (`edgeml fleet devices`)? "
                             "Or compile without --measure-on: the build host measures")  # fmt: skip
        result = row["result"]
        out[name] = {
            "latency": result["latency"]["artifact"],
            "ratio_vs_first": result["ratio"],
            "measured_on": {"device": device_id, "host": result["host"], "runtimes": result["runtimes"]},
        }
    return out


def _publish_draft(fleet: Any, folder: Path, tmp: Path) -> str:
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != "manifest.json"}  # fmt: skip
    digest = hashlib.sha256(files[manifest["target"]["model_file"]]).hexdigest()[:12]
    manifest["version"] = f"{manifest['version']}-m{digest}"[:64]
    out = tmp / manifest["version"]
    write_artifact(out, files, {k: v for k, v in manifest.items() if k not in ("files", "signature")}, fleet.key)
    return fleet.artifacts.publish(out, time.time())["sha256"]

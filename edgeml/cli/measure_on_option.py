"""`edgeml compile --measure-on DEVICE`: the candidates timed on a fleet device through bench jobs before the
decision, so the device's figures decide speed; the manifest records where each figure was measured.

The compiler knows nothing of the fleet: this module hands `compile_model` a `latency_on_device` hook that
publishes the compiler's draft candidates and runs one bench job per candidate (fleet/bench_measure.py). A
device that does not answer within the job's deadline fails the compile (FleetError naming the device): a
decision silently taken on the host's figures would be the thing --measure-on was asked to avoid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from edgeml.cli.output import print_table, stderr

__all__ = ["device_hook", "measure_on_option", "measured_on_device"]


def measure_on_option(fn):
    return click.option(
        "--measure-on",
        "measure_on",
        default=None,
        metavar="DEVICE",
        help="Time every candidate on this fleet device through bench jobs (the float build as baseline) and "
        "decide by the device's figures. Needs `edgeml fleet serve` on EDGEML_FLEET_DB / EDGEML_FLEET_STORE.",
    )(fn)


def device_hook(device: str | None, key: str | None):
    """`compile_model`'s `latency_on_device` for `--measure-on DEVICE`; None without a device."""
    if not device:
        return None

    def latency_on_device(drafts: dict[str, Path]) -> dict[str, dict[str, Any]]:
        from edgeml.cli.fleet_common import open_fleet
        from edgeml.fleet.bench_measure import measure_drafts

        fleet = open_fleet(os.environ.get("EDGEML_FLEET_DB", "fleet.sqlite"),
                           os.environ.get("EDGEML_FLEET_STORE", "artifacts"), key)  # fmt: skip
        return measure_drafts(fleet, device, drafts)

    return latency_on_device


def measured_on_device(result: Any, quiet: bool) -> dict[str, Any]:
    """`{"measured_on_device": {candidate: device and host figures}}` where the device measured, else `{}`;
    a table unless `quiet`."""
    candidates = result.manifest["decision"]["candidates"]
    figures = {n: {k: c[k] for k in ("latency", "host_latency", "measured_on")}
               for n, c in candidates.items() if "host_latency" in c}  # fmt: skip
    if not figures:
        return {}
    if not quiet:
        where = next(iter(figures.values()))["measured_on"]["latency"]
        title = escape(f"latency measured on device {where['device']} ({where.get('description', '?')})")
        table = Table("candidate", "device p50 ms", "host p50 ms", title=title, title_justify="left")
        for name, f in figures.items():
            table.add_row(name, f"{f['latency']['p50_ms']:.4f}", f"{f['host_latency']['p50_ms']:.4f}")
        print_table(table)
        stderr.print("[dim]the decision used the device's figures; the host's are kept beside them[/]")
    return {"measured_on_device": figures}

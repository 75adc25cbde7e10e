"""`edgeml compile --measure-on DEVICE`: the shipped model (and the float source, where the target's runtime
runs it) timed on a fleet device through bench jobs, reported with where each figure was measured.

Kept as one option and one call so the compile options' schema can absorb it: the decision itself is still
taken on the build host's figures (see the report's "left" note)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from edgeml.cli.output import print_table, stderr

__all__ = ["measure_on_device", "measure_on_option"]


def measure_on_option(fn):
    return click.option(
        "--measure-on",
        "measure_on",
        default=None,
        metavar="DEVICE",
        help="Also time the shipped model (and the float .onnx source) on this fleet device through a bench job, "
        "the source as baseline in the same run. Needs `edgeml fleet serve` on EDGEML_FLEET_DB / EDGEML_FLEET_STORE.",
    )(fn)


def measure_on_device(result: Any, model: str, device: str | None, key: str | None, quiet: bool) -> dict[str, Any]:
    """`{"measured_on_device": {candidate: figures}}` or `{}` without a device; a table unless `quiet`."""
    if not device:
        return {}
    from edgeml.cli.fleet_common import open_fleet
    from edgeml.fleet.bench_measure import measure_candidates

    fleet = open_fleet(os.environ.get("EDGEML_FLEET_DB", "fleet.sqlite"),
                       os.environ.get("EDGEML_FLEET_STORE", "artifacts"), key)  # fmt: skip
    m = result.manifest
    candidates = {"shipped": Path(result.out) / m["target"]["model_file"]}
    if model.endswith(".onnx") and m["target"]["runtime"] == "onnxruntime":
        candidates = {"float source": Path(model)} | candidates
    figures = measure_candidates(fleet, device, result.out, candidates)
    if not quiet:
        table = Table("model", "p50 ms", "p99 ms", "vs float", "measured on", title_justify="left",
                      title=f"measured on device {device}")  # fmt: skip
        for name, f in figures.items():
            where = f"{f['measured_on']['device']} ({f['measured_on']['host'].get('description', '?')})"
            table.add_row(name, f"{f['latency']['p50_ms']:.4f}", f"{f['latency']['p99_ms']:.4f}",
                          f"{f['ratio_vs_first']:.3f}", escape(where))  # fmt: skip
        print_table(table)
        stderr.print("[dim]the precision decision above used the build host's figures; these are the device's[/]")
    return {"measured_on_device": figures}

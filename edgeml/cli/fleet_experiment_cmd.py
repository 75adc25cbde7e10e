"""`edgeml fleet experiment` (A/B on hash-assigned cohorts) and `edgeml fleet retrain` (drift evidence)."""

from __future__ import annotations

import time

import click
from rich.table import Table

from edgeml.cli.fleet_common import fleet_options, open_fleet
from edgeml.cli.output import console, errors_handled, print_json, print_table

__all__ = ["experiment", "retrain"]


@click.group("experiment")
def experiment() -> None:
    """A/B experiments: two versions on hash-assigned cohorts, compared with stated tests."""


@experiment.command("create")
@fleet_options
@click.argument("a")
@click.argument("b")
@click.option("--split", type=float, default=50, show_default=True, help="Percent of devices on B.")
@click.option("--to", "selector", required=True, help="Devices: target=ID,tag:KEY=VALUE,id=PATTERN or all.")
@click.option(
    "--metric",
    "metrics",
    default="p95_latency,error_rate",
    show_default=True,
    help="Comma-separated: p50/p90/p95/p99_latency, error_rate, accuracy (from device feedback).",
)
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def experiment_create(db, store, key, a, b, split, selector, metrics, as_json) -> None:
    """Run A (name@version) on most devices and B on --split percent of them."""
    r = open_fleet(db, store, key).experiments.create(a, b, split, selector, metrics.split(","), time.time())
    if as_json:
        print_json(r)
        return
    console.print(
        f"[green]✓[/] experiment {r['id']}: A on {r['arms']['A']['devices']} device(s), "
        f"B on {r['arms']['B']['devices']}"
    )


@experiment.command("report")
@fleet_options
@click.argument("experiment_id")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def experiment_report(db, store, key, experiment_id, as_json) -> None:
    """Per arm: n, metric, difference (B − A), 95 % interval, p-value, verdict."""
    r = open_fleet(db, store, key).experiments.report(experiment_id)
    if as_json:
        print_json(r)
        return
    arms = r["arms"]
    console.print(
        f"[bold]{experiment_id}[/] ({r['state']}{': ' + r['outcome'] if r['outcome'] else ''}): "
        f"A {arms['A']['reporting']}/{arms['A']['devices']} reporting, "
        f"B {arms['B']['reporting']}/{arms['B']['devices']} reporting"
    )
    table = Table("metric", "A", "B", "B − A", "95 % interval", "p-value", "verdict", "test")
    for metric, m in r["metrics"].items():
        fmt = (lambda v: f"{v:.4g}") if "a" in m else (lambda v: "—")
        ci = f"[{m['ci95'][0]:.4g}, {m['ci95'][1]:.4g}]" if "ci95" in m else "—"
        table.add_row(
            metric,
            fmt(m.get("a")),
            fmt(m.get("b")),
            fmt(m.get("difference")),
            ci,
            f"{m['p_value']:.3g}" if "p_value" in m else "—",
            m["verdict"],
            m["test"],
        )
    print_table(table)


@experiment.command("stop")
@fleet_options
@click.argument("experiment_id")
@click.option("--keep", type=click.Choice(["A", "B"]), default=None, help="Move every device to this arm's version.")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def experiment_stop(db, store, key, experiment_id, keep, as_json) -> None:
    """End an experiment; its devices are free for rollouts again (with --keep, all on one arm)."""
    r = open_fleet(db, store, key).experiments.stop(experiment_id, keep, time.time())
    if as_json:
        print_json(r)
        return
    console.print(f"[green]✓[/] experiment {experiment_id}: {r['outcome']}")


@experiment.command("list")
@fleet_options
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def experiment_list(db, store, key, as_json) -> None:
    """Every experiment, newest first."""
    rows = open_fleet(db, store, key).experiments.list()
    if as_json:
        print_json(rows)
        return
    table = Table("id", "A", "B", "split", "to", "devices", "state")
    for e in rows:
        state = e["outcome"] if e["ended_at"] is not None else "running"
        table.add_row(e["id"], e["a_sha"][:12] + "…", e["b_sha"][:12] + "…", f"{e['split']:g} %", e["selector"],
                      str(e["devices"]), state)  # fmt: skip
    print_table(table)


@click.group("retrain")
def retrain() -> None:
    """Retraining requests raised by sustained input drift across devices."""


@retrain.command("list")
@fleet_options
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def retrain_list(db, store, key, as_json) -> None:
    """Open and past requests: artifact, input feature, devices, worst PSI, time range."""
    rows = open_fleet(db, store, key).retraining.list()
    if as_json:
        print_json(rows)
        return
    table = Table("id", "artifact", "feature", "devices", "max PSI", "first seen", "last seen", "state")
    for r in rows:
        table.add_row(
            r["id"],
            r["artifact_sha"][:12] + "…",
            f"{r['input']}[{r['feature']}]",
            str(len(r["devices"])),
            f"{r['max_psi']:.3f}",
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["first_seen"])),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["last_seen"])),
            r["state"],
        )
    print_table(table)


@retrain.command("export")
@fleet_options
@click.argument("request_id")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Dataset folder to create.")
@errors_handled
def retrain_export(db, store, key, request_id, out) -> None:
    """Write the request's evidence (request.json, per-device drift histograms) as a dataset folder."""
    folder = open_fleet(db, store, key).retraining.export(request_id, out)
    console.print(f"[green]✓[/] {folder}: request.json and drift.npz")

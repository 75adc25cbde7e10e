"""`edgeml demo`: compile → fleet → drift → retraining flow → canary of the retrained model, on one machine."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from edgeml.cli.output import console, errors_handled, print_json, print_table, stderr

__all__ = ["demo_cmd", "quiet_prefect"]


def quiet_prefect() -> None:
    """Prefect logs every task run at INFO; the CLI says what happens itself. Set before Prefect is imported."""
    import os

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # NOTE: its heartbeat logs lock errors
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # NOTE: a loaded 2-core host


@click.command("demo")
@click.option("--devices", type=int, default=6, show_default=True, help="Simulated devices beside the real agent.")
@click.option(
    "--drift", type=float, default=0.3, show_default=True, help="Share of input values that saturate after the drift."
)
@click.option("--broker", default=None, help="mqtt://host:port of a broker to use. Default: an embedded one.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for everything the demo writes (fleet, artifacts, MLflow store, report). Default: a new "
    "folder under edgeml's cache folder.",
)
@click.option("--no-mlflow", is_flag=True, help="Do not record to MLflow even where the extra is installed.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (progress goes to stderr).")
@errors_handled
def demo_cmd(devices: int, drift: float, broker: str | None, out: str | None, no_mlflow: bool, as_json: bool) -> None:
    """Run the whole loop on this machine in a few minutes: compile the digits example, roll it out to one real
    agent and simulated devices through a canary, inject input drift, let the fleet open a retraining request,
    run the retraining flow (train → compile → evaluate against production → canary → promote), and report.

    Needs the compile, fleet and prefect extras (mlflow optional): pip install -e '.[compile,fleet]', then
    pip install -e '.[mlflow,prefect]' (two steps: docs/closed-loop.md).
    """
    from edgeml.demo.run_demo import DemoSettings, run_demo
    from edgeml.locations import cache_dir

    quiet_prefect()

    root = Path(out) if out else cache_dir() / "demo" / time.strftime("%Y%m%d-%H%M%S")
    settings = DemoSettings(root, devices=devices, drift=drift, broker=broker, mlflow=not no_mlflow)
    started = time.monotonic()
    with stderr.status("[bold]edgeml demo[/] starting…") as status:

        def say(step: str, detail: str) -> None:
            stderr.print(f"[dim]{time.monotonic() - started:6.1f} s[/] [bold cyan]{step:>8}[/] {escape(detail)}")
            status.update(f"[bold]edgeml demo[/] {escape(step)}…")

        summary = run_demo(settings, say)
    if as_json:
        print_json(summary)
        return
    _render(summary)


def _render(s: dict) -> None:
    table = Table("", "production (1.0.0)", f"retrained ({s['retrained_release']['release']})", title="Accuracy (%)")
    for data, per in s["accuracy"].items():
        table.add_row(f"{data} data", f"{per['production']:.1f}", f"{per['candidate']:.1f}")
    print_table(table)
    live = s["agent_live_accuracy"]
    console.print(f"real agent, accuracy on the drifted traffic it served: {live}")
    console.print(
        f"[green]✓[/] request {s['request']['id']} {s['request']['state']} by {s['retrained_release']['release']} "
        f"(rollout {s['retrained_release']['rollout_id']} {s['retrained_release']['rollout_state']}); "
        f"devices: {sorted(set(s['devices']['versions'].values()))}; {s['seconds']:.0f} s"
    )
    if "mlflow" in s:
        console.print(f"MLflow aliases of digits: {s['mlflow']['aliases']}; browse: [bold]{s['mlflow']['ui']}[/]")
    console.print(f"report: {s['report']}; fleet: {s['fleet']['status']}")

"""`edgeml fleet retrain run|approve|flows`: drive the retraining flow (edgeml.flows, `edgeml[prefect]`)."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from edgeml.cli.fleet_common import fleet_options
from edgeml.cli.mlflow_option import mlflow_option
from edgeml.cli.output import console, errors_handled, print_json, print_table

__all__ = ["retrain_approve", "retrain_flows", "retrain_run"]


def _settings(db, store, key, hook="", work_dir=None, mlflow=None, **plan):
    from edgeml.flows import RetrainSettings

    return RetrainSettings(db, store, hook, key=key, work_dir=work_dir, mlflow=mlflow, **plan)


@click.command("run")
@fleet_options
@click.argument("request_id")
@click.option("--hook", required=True, metavar="MODULE:FUNCTION", help="Your training function (see edgeml.flows).")
@click.option("--work-dir", default=None, help="Where the flow keeps its work and ledger. Default: <db>.retrain/.")
@click.option("--canary", default="20%", show_default=True, help="First wave of the rollout.")
@click.option("--waves", default="100%", show_default=True, help="Later waves (cumulative shares).")
@click.option("--bake", default="5m", show_default=True, help="Wait after each wave before judging its gates.")
@click.option("--deadline", default="30m", show_default=True, help="Per-device deadline of the rollout.")
@click.option("--gate", "gates", multiple=True, help="Rollout gate (repeatable), e.g. 'p95_latency<=1.2x'.")
@click.option("--min-gain", type=float, default=1.0, show_default=True, help="Points gained on drifted data.")
@click.option("--max-drop", type=float, default=1.0, show_default=True, help="Points lost on the original set.")
@click.option("--require-approval", is_flag=True, help="Stop before the rollout until `retrain approve`.")
@click.option("--timeout", "timeout_s", type=float, default=3600, show_default=True, help="Seconds to wait for it.")
@mlflow_option
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def retrain_run(db, store, key, request_id, hook, work_dir, canary, waves, bake, deadline, gates, min_gain, max_drop,
                require_approval, timeout_s, mlflow, as_json) -> None:  # fmt: skip
    """Run the retraining flow once for REQUEST_ID (resuming where an interrupted run stopped): export the evidence
    → your training hook → compile with the replaced release's recipe → evaluate against production on the
    drifted and the original data → stop with the reason if not better → publish → canary rollout with gates
    (a running `edgeml fleet serve` moves it) → resolve the request. Prefect's ephemeral API unless
    PREFECT_API_URL names a server."""
    from edgeml.cli.demo_cmd import quiet_prefect

    quiet_prefect()
    from edgeml.flows import run_retrain

    settings = _settings(
        db, store, key, hook, work_dir, mlflow, canary=canary, waves=waves, bake=bake, deadline=deadline,
        gates=tuple(gates) or ("install_success>=1.0",), min_gain=min_gain, max_drop=max_drop,
        require_approval=require_approval, rollout_timeout_s=timeout_s,
    )  # fmt: skip
    run = run_retrain(request_id, settings)
    if as_json:
        print_json(run)
        return
    _render_run(run)


@click.command("approve")
@fleet_options
@click.argument("request_id")
@click.option("--work-dir", default=None, help="The flow's folder (default: <db>.retrain/).")
@errors_handled
def retrain_approve(db, store, key, request_id, work_dir) -> None:
    """Let the flow of REQUEST_ID (run with --require-approval) go on to its rollout at its next run."""
    from edgeml.flows import approve

    approve(_settings(db, store, key, work_dir=work_dir), request_id)
    console.print(f"[green]✓[/] {request_id} approved; run `edgeml fleet retrain run {request_id} --hook …` again")


@click.command("flows")
@fleet_options
@click.option("--work-dir", default=None, help="The flow's folder (default: <db>.retrain/).")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def retrain_flows(db, store, key, work_dir, as_json) -> None:
    """Every retraining flow run: request, state, why, attempts."""
    from edgeml.flows import FlowLedger

    ledger = FlowLedger(_settings(db, store, key, work_dir=work_dir).ledger_path())
    rows = [ledger.run(r["request_id"]) for r in ledger.runs()]
    if as_json:
        print_json(rows)
        return
    table = Table("request", "state", "reason", "attempts", "steps done")
    for r in rows:
        table.add_row(r["request_id"], r["state"], r["reason"], str(r["attempts"]), ", ".join(r["steps"]))
    print_table(table)


def _render_run(run: dict) -> None:
    steps = run["steps"]
    if "evaluate" in steps:
        table = Table("data", "production", "retrained", title="accuracy (%)")
        for data, acc in steps["evaluate"]["accuracy"].items():
            table.add_row(data, f"{acc['production']:.2f}", f"{acc['candidate']:.2f}")
        print_table(table)
    mark = "[green]✓[/]" if run["state"] == "resolved" else "[yellow]•[/]"
    console.print(f"{mark} {run['request_id']}: {run['state']} — {escape(run['reason'])}")

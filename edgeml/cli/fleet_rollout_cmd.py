"""`edgeml fleet rollout`: create, watch and steer staged rollouts."""

from __future__ import annotations

import getpass
import time

import click
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from edgeml.cli.fleet_common import fleet_options, open_fleet
from edgeml.cli.output import console, errors_handled, print_json, print_table

__all__ = ["rollout"]

ENDED = ("completed", "aborted")
WATCH_S = 2.0


@click.group("rollout")
def rollout() -> None:
    """Create, watch and steer staged rollouts."""


@rollout.command("create")
@fleet_options
@click.argument("artifact")
@click.option("--to", "selector", required=True, help="Devices: target=ID,tag:KEY=VALUE,id=PATTERN or all.")
@click.option("--canary", default="5%", show_default=True, help="First wave's share of the devices.")
@click.option(
    "--waves",
    default="25%,100%",  # NOTE: fleet.rollout_plan.DEFAULT_WAVES (a test compares the CLI and HTTP defaults)
    show_default=True,
    help="Cumulative shares after the canary (the default is dropped when --canary is 100%).",
)
@click.option("--bake", default="10m", show_default=True, help="Wait after a wave settles before it may pass.")
@click.option(
    "--deadline", default="30m", show_default=True, help="Most time a device gets per install; past it, a failure."
)
@click.option(
    "--gate",
    "gates",
    multiple=True,
    help="Health gate, e.g. 'p95_latency<=1.2*baseline' (repeatable). Without an install_success gate, "
    "'install_success>=0.5' applies. A gate the reporting devices already violate aborts at once.",
)
@click.option(
    "--min-sample",
    default=3,  # NOTE: fleet.rollout_plan.DEFAULT_MIN_SAMPLE
    show_default=True,
    type=click.IntRange(min=1),
    help="Reporting devices a telemetry gate needs before the wave settled (fewer when fewer are exposed).",
)
@click.option(
    "--allow-rollback",
    is_flag=True,
    default=False,
    help="Take devices below the release the fleet declared good for them (their anti-rollback floor): "
    "signed into their desired states and recorded in the rollout's events.",
)
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def create(
    db, store, key, artifact, selector, canary, waves, bake, deadline, gates, min_sample, allow_rollback, as_json
) -> None:
    """Roll ARTIFACT (name@version or sha256) out to the selected devices."""
    from edgeml.fleet import RolloutPlan

    plan = RolloutPlan.build(canary, waves, bake, deadline, list(gates), min_sample, allow_rollback)
    r = open_fleet(db, store, key).rollouts.create(artifact, selector, plan, time.time(), _actor())
    if as_json:
        print_json(r)
        return
    if allow_rollback:
        console.print(f"[yellow]![/] {escape(r['events'][0]['detail'].split('; ')[-1])}")
    sizes = ", ".join(str(w["size"]) for w in r["waves"])
    console.print(
        f"[green]✓[/] rollout {r['id']}: {artifact} to {sum(w['size'] for w in r['waves'])} device(s) "
        f"in waves of {sizes}"
        + (f"; {r['skipped_incompatible']} incompatible skipped" if r["skipped_incompatible"] else "")
    )


@rollout.command("status")
@fleet_options
@click.argument("rollout_id")
@click.option(
    "--watch",
    is_flag=True,
    help="Follow the rollout until it ends: redrawn in place every 2 s on a terminal; otherwise (a pipe, a log, "
    "--json) printed again only when its state, wave or executions change.",
)
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def status(db, store, key, rollout_id, watch, as_json) -> None:
    """Per wave: exposed, succeeded, failed; the gates' current values."""
    f = open_fleet(db, store, key)
    r = f.rollouts.status_with_gates(rollout_id)
    if watch and console.is_terminal and not as_json:
        _watch_live(f, r)
    elif watch:
        _watch_changes(f, r, as_json)
    else:
        _show(r, as_json)


def _settled(r) -> bool:
    """Ended, and no device still installing or reverting (an abort's reverts have finished or timed out)."""
    return r["state"] in ENDED and not r["moving"]


def _watch_live(f, r) -> None:
    with Live(_status_view(r), console=console, auto_refresh=False) as live:
        while not _settled(r):
            time.sleep(WATCH_S)
            r = f.rollouts.status_with_gates(r["id"])
            live.update(_status_view(r), refresh=True)


def _watch_changes(f, r, as_json: bool) -> None:
    """One print per change of what the rollout does (not of the gates' moving values), for logs and scripts;
    returns once the rollout ended and its devices settled."""
    shown = None
    while True:
        if _progress(r) != shown:
            _show(r, as_json)
            shown = _progress(r)
        if _settled(r):
            return
        time.sleep(WATCH_S)
        r = f.rollouts.status_with_gates(r["id"])


def _show(r, as_json: bool) -> None:
    if as_json:
        print_json(r)
    else:
        console.print(_status_view(r))


def _progress(r) -> tuple:
    return r["state"], r["wave"], r["reason"], r["waves"], r["moving"]


def _status_view(r) -> Group:
    wave = f"wave {r['wave']}" if r["wave"] >= 0 else "canary not exposed yet"
    headline = f"[bold]{r['id']}[/] {escape(r['artifact'])} {r['state']} — {wave}"
    table = Table("wave", "devices", "executions")
    for w in r["waves"]:
        states = " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in w.items() if k not in ("wave", "size"))
        table.add_row(str(w["wave"]), str(w["size"]), states)
    views: list = [headline + (f" — {escape(r['reason'])}" if r["reason"] else ""), table]
    if r["state"] in ENDED and r["moving"]:
        doing = "reverting" if r["state"] == "aborted" else "installing"
        views.append(f"[yellow]{r['moving']} device(s) still {doing}[/] (offline ones until they return or their "
                     "deadline passes)")  # fmt: skip
    if r.get("gates_now"):
        gates = Table("metric", "exposed devices", "baseline")
        for metric, (value, base) in r["gates_now"].items():
            gates.add_row(metric, "—" if value is None else f"{value:.4g}", "—" if base is None else f"{base:.4g}")
        views.append(gates)
    if r.get("events"):
        trail = Table("when (UTC)", "who", "what", "detail", title="events (latest 5)")
        for e in r["events"][-5:]:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"]))
            trail.add_row(when, escape(e["actor"]), e["kind"], escape(e["detail"]))
        views.append(trail)
    return Group(*views)


@rollout.command("list")
@fleet_options
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def list_rollouts(db, store, key, as_json) -> None:
    """Every rollout, newest first."""
    rows = open_fleet(db, store, key).rollouts.list()
    if as_json:
        print_json(rows)
        return
    table = Table("id", "artifact", "to", "state", "wave", "reason")
    for r in rows:
        table.add_row(r["id"], r["artifact"], escape(r["selector"]), r["state"], str(r["wave"]), escape(r["reason"]))
    print_table(table)


_STEER_HELP = {
    "pause": "Stop exposing new waves.",
    "resume": "Go on after a pause.",
    "abort": "Stop and revert every exposed device to the model it ran before.",
}


def _actor() -> str:
    """Who the rollout's audit trail names for a change made from this command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # NOTE: no user name for this uid (a bare container)
        return "cli"


def _steer(verb: str):
    @rollout.command(verb, help=_STEER_HELP[verb])
    @fleet_options
    @click.argument("rollout_id")
    @errors_handled
    def command(db, store, key, rollout_id) -> None:
        f = open_fleet(db, store, key)
        now = time.time()
        if verb == "abort":
            f.rollouts.abort(rollout_id, "aborted by the operator", now, _actor())
        else:
            getattr(f.rollouts, verb)(rollout_id, now, _actor())
        console.print(
            f"[green]✓[/] rollout {rollout_id}: {verb} recorded; the serving fleet applies it on its next tick"
        )

    return command


for _verb in ("pause", "resume", "abort"):
    _steer(_verb)

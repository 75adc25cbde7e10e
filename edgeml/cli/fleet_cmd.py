"""`edgeml fleet`: serve the fleet, publish artifacts, list devices, run rollouts, generate broker ACLs.

Every command but `serve` works on the fleet database directly, so it runs beside a serving fleet: the
service picks up new rollouts and aborts on its next tick.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import click
from rich.table import Table

from edgeml.cli.output import console, errors_handled, human_size, print_json
from edgeml.locations import default_key_path

__all__ = ["fleet"]


def _options(fn):
    fn = click.option(
        "--db",
        default=lambda: os.environ.get("EDGEML_FLEET_DB", "fleet.sqlite"),
        show_default="fleet.sqlite",
        help="Fleet database (or EDGEML_FLEET_DB).",
    )(fn)
    fn = click.option(
        "--store",
        default=lambda: os.environ.get("EDGEML_FLEET_STORE", "artifacts"),
        show_default="artifacts",
        help="Artifact store folder (or EDGEML_FLEET_STORE).",
    )(fn)
    fn = click.option(
        "--key",
        default=None,
        type=click.Path(dir_okay=False),
        help="The fleet's Ed25519 signing key: signs desired states; artifacts must verify against "
        "its public key. Default: your edgeml signing key.",
    )(fn)
    return fn


def _fleet(db: str, store: str, key: str | None):
    from edgeml.artifact import load_private_key
    from edgeml.fleet import Fleet

    return Fleet(db, store, load_private_key(key or default_key_path()))


@click.group("fleet")
def fleet() -> None:
    """Push signed artifacts to devices over MQTT in staged rollouts."""


@fleet.command("serve")
@_options
@click.option(
    "--broker",
    default=None,
    help="mqtt://[user:pass@]host:port or mqtts://… of the broker. Default: start an embedded broker.",
)
@click.option("--port", type=int, default=1883, show_default=True, help="Embedded broker port (without --broker).")
@click.option("--chunk-size", type=int, default=64 * 1024, show_default=True, help="Artifact chunk bytes.")
@click.option("--share-group", default=None, help="MQTT 5 shared-subscription group, to run several instances.")
@click.option("--tls-ca", default=None, help="CA file for mqtts://.")
@click.option("--tls-cert", default=None, help="Client certificate.")
@click.option("--tls-key", default=None, help="Client certificate key.")
@errors_handled
def serve(db, store, key, broker, port, chunk_size, share_group, tls_ca, tls_cert, tls_key) -> None:
    """Run the fleet service until interrupted (Ctrl-C): intake, chunk serving, rollout steps."""
    from edgeml.fleet import FleetService
    from edgeml.fleet.embedded_broker import EmbeddedBroker
    from edgeml.transport.mqtt_transport import MqttTransport, TlsConfig

    embedded = None
    if broker is None:
        embedded = EmbeddedBroker(port)
        embedded.start()
        broker = embedded.url
        console.print(
            f"[yellow]•[/] no --broker given: started an embedded MQTT broker (amqtt) on {broker} "
            "— fine for trying edgeml on one machine; use Mosquitto, EMQX or HiveMQ in production"
        )
    tls = TlsConfig(tls_ca, tls_cert, tls_key) if (tls_ca or tls_cert) else None
    service = FleetService(
        _fleet(db, store, key),
        MqttTransport(broker, f"edgeml-fleet-{os.getpid()}", tls=tls),
        chunk_size=chunk_size,
        share_group=share_group,
    )
    service.start()
    console.print(f"[green]✓[/] fleet serving on {broker} (database {db}, store {store}); Ctrl-C stops")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    service.stop()
    if embedded is not None:
        embedded.stop()
    console.print("fleet stopped")


@fleet.command("publish")
@_options
@click.argument("artifact", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def publish(db, store, key, artifact, as_json) -> None:
    """Verify ARTIFACT against the fleet's key and store it by content."""
    a = _fleet(db, store, key).artifacts.publish(artifact, time.time())
    if as_json:
        print_json({k: v for k, v in a.items() if k != "manifest"})
        return
    console.print(
        f"[green]✓[/] published {a['name']}@{a['version']} (release {a['release']}, {a['target']}, "
        f"{human_size(a['size'])}) as {a['sha256'][:16]}…"
    )


@fleet.command("devices")
@_options
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only devices with this tag.")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def devices(db, store, key, tags, as_json) -> None:
    """Devices: id, target, model version, state, last seen."""
    from edgeml.fleet.selector import parse_selector

    selector = parse_selector(",".join(f"tag:{t}" for t in tags)) if tags else None
    rows = _fleet(db, store, key).devices.select(selector)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "target", "model", "state", "online", "last seen", "tags")
    for d in rows:
        seen = f"{time.time() - d['last_seen']:.0f} s ago"
        table.add_row(
            d["id"],
            d["target"],
            d["current_version"] or "—",
            d["state"] or "—",
            "yes" if d["online"] else "no",
            seen,
            ",".join(f"{k}={v}" for k, v in d["tags"].items()),
        )
    console.print(table)


@fleet.group("rollout")
def rollout() -> None:
    """Create, watch and steer staged rollouts."""


@rollout.command("create")
@_options
@click.argument("artifact")
@click.option("--to", "selector", required=True, help="Devices: target=ID,tag:KEY=VALUE,id=PATTERN or all.")
@click.option("--canary", default="5%", show_default=True, help="First wave's share of the devices.")
@click.option("--waves", default="25%,100%", show_default=True, help="Cumulative shares after the canary.")
@click.option("--bake", default="10m", show_default=True, help="Wait after a wave settles before judging it.")
@click.option("--deadline", default="30m", show_default=True, help="Most time a device gets per install.")
@click.option("--gate", "gates", multiple=True, help="Health gate, e.g. 'p95_latency<=1.2*baseline' (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def create(db, store, key, artifact, selector, canary, waves, bake, deadline, gates, as_json) -> None:
    """Roll ARTIFACT (name@version or sha256) out to the selected devices."""
    from edgeml.fleet import RolloutPlan

    plan = RolloutPlan.build(canary, waves, bake, deadline, list(gates))
    r = _fleet(db, store, key).rollouts.create(artifact, selector, plan, time.time())
    if as_json:
        print_json(r)
        return
    sizes = ", ".join(str(w["size"]) for w in r["waves"])
    console.print(
        f"[green]✓[/] rollout {r['id']}: {artifact} to {sum(w['size'] for w in r['waves'])} device(s) "
        f"in waves of {sizes}"
        + (f"; {r['skipped_incompatible']} incompatible skipped" if r["skipped_incompatible"] else "")
    )


@rollout.command("status")
@_options
@click.argument("rollout_id")
@click.option("--watch", is_flag=True, help="Refresh every 2 s until the rollout ends.")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def status(db, store, key, rollout_id, watch, as_json) -> None:
    """Per wave: exposed, succeeded, failed; the gates' current values."""
    f = _fleet(db, store, key)
    while True:
        r = f.rollouts.status(rollout_id)
        r["gates_now"] = f.rollouts.health.measure(r)["values"] if r["wave"] >= 0 else {}
        if as_json:
            print_json(r)
        else:
            _render_status(r)
        if not watch or r["state"] in ("completed", "aborted"):
            return
        time.sleep(2)


def _render_status(r) -> None:
    console.print(f"[bold]{r['id']}[/] {r['state']} — wave {r['wave']} — {r['reason'] or ''}")
    table = Table("wave", "devices", "executions")
    for w in r["waves"]:
        states = " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in w.items() if k not in ("wave", "size"))
        table.add_row(str(w["wave"]), str(w["size"]), states)
    console.print(table)
    if r.get("gates_now"):
        gates = Table("metric", "exposed devices", "baseline")
        for metric, (value, base) in r["gates_now"].items():
            gates.add_row(metric, "—" if value is None else f"{value:.4g}", "—" if base is None else f"{base:.4g}")
        console.print(gates)


@rollout.command("list")
@_options
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def list_rollouts(db, store, key, as_json) -> None:
    """Every rollout, newest first."""
    rows = _fleet(db, store, key).rollouts.list()
    if as_json:
        print_json(rows)
        return
    table = Table("id", "artifact", "to", "state", "wave", "reason")
    for r in rows:
        table.add_row(r["id"], r["artifact_sha"][:12] + "…", r["selector"], r["state"], str(r["wave"]), r["reason"])
    console.print(table)


_STEER_HELP = {
    "pause": "Stop exposing new waves.",
    "resume": "Go on after a pause.",
    "abort": "Stop and revert every exposed device to the model it ran before.",
}


def _steer(verb: str):
    @rollout.command(verb, help=_STEER_HELP[verb])
    @_options
    @click.argument("rollout_id")
    @errors_handled
    def command(db, store, key, rollout_id) -> None:
        f = _fleet(db, store, key)
        now = time.time()
        if verb == "abort":
            f.rollouts.abort(rollout_id, "aborted by the operator", now)
        else:
            getattr(f.rollouts, verb)(rollout_id, now)
        console.print(
            f"[green]✓[/] rollout {rollout_id}: {verb} recorded; the serving fleet applies it on its next tick"
        )

    return command


for _verb in ("pause", "resume", "abort"):
    _steer(_verb)


@fleet.command("acl")
@_options
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Mosquitto acl_file to write.")
@click.option("--device", "extra", multiple=True, help="Also include this device id (repeatable).")
@click.option("--fleet-user", default="edgeml-fleet", show_default=True)
@errors_handled
def acl(db, store, key, out, extra, fleet_user) -> None:
    """Write per-device topic ACLs for the broker (devices from the database plus --device)."""
    from edgeml.fleet.acl import mosquitto_acl

    ids = [d["id"] for d in _fleet(db, store, key).devices.select()] + list(extra)
    with open(out, "w") as f:
        f.write(mosquitto_acl(ids, fleet_user))
    console.print(f"[green]✓[/] {out}: ACLs for {len(set(ids))} device(s) and the fleet user {fleet_user}")


@fleet.command("simulate")
@click.option("--devices", "n", type=int, default=100, show_default=True, help="How many simulated devices.")
@click.option("--target", default="cpu-ort", show_default=True, help="Target id the devices report.")
@click.option("--broker", required=True, help="mqtt://host:port of the broker the fleet serves.")
@click.option("--pubkey", required=True, type=click.Path(exists=True, dir_okay=False), help="The fleet's public key.")
@click.option(
    "--disconnect-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of devices that drop off once in the middle of a download.",
)
@click.option("--latency-ms", type=float, default=5.0, show_default=True, help="Simulated inference latency.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="version=V:latency_ms=+40,error_rate=0.05",
    help="Misbehave on one version, to rehearse an abort (repeatable).",
)
@click.option("--duration", default="10m", show_default=True, help="How long to run.")
@click.option("--prefix", default="sim", show_default=True, help="Device id prefix.")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def simulate_cmd(n, target, broker, pubkey, disconnect_rate, latency_ms, faults, duration, prefix, as_json) -> None:
    """Run simulated devices that speak the real protocol (asyncio, one connection each)."""
    import asyncio
    from dataclasses import asdict

    from edgeml.artifact import load_public_key
    from edgeml.fleet.rollout_plan import parse_duration
    from edgeml.fleet.simulation import simulate

    parsed = dict(_parse_fault(f) for f in faults)
    console.print(f"[dim]{n} simulated {target} device(s) on {broker} for {duration}; Ctrl-C stops[/]")
    report = asyncio.run(
        simulate(
            broker,
            n,
            target,
            load_public_key(pubkey),
            duration_s=parse_duration(duration),
            disconnect_rate=disconnect_rate,
            latency_ms=latency_ms,
            faults=parsed,
            prefix=prefix,
        )
    )
    if as_json:
        print_json(asdict(report))
        return
    console.print(
        f"devices by version: {report.versions}; disconnects {report.disconnects}; "
        f"corrupt installs {report.corrupt_installs}"
    )


def _parse_fault(text: str):
    from edgeml.fleet import FleetError
    from edgeml.fleet.simulated_device import Fault

    version, sep, rest = text.partition(":")
    if not version.startswith("version=") or not sep:
        raise FleetError(f"fault {text!r} is not version=V:latency_ms=+40,error_rate=0.05")
    values = {}
    for item in rest.split(","):
        k, _, v = item.partition("=")
        if k not in ("latency_ms", "error_rate"):
            raise FleetError(f"fault {text!r}: unknown setting {k!r} (latency_ms, error_rate)")
        values[k] = float(v)
    return version.removeprefix("version="), Fault(**values)


@fleet.group("experiment")
def experiment() -> None:
    """A/B experiments: two versions on hash-assigned cohorts, compared with stated tests."""


@experiment.command("create")
@_options
@click.argument("a")
@click.argument("b")
@click.option("--split", type=float, default=50, show_default=True, help="Percent of devices on B.")
@click.option("--to", "selector", required=True, help="Devices: target=ID,tag:KEY=VALUE,id=PATTERN or all.")
@click.option(
    "--metric",
    "metrics",
    default="p95_latency,error_rate",
    show_default=True,
    help="Comma-separated: p50/p90/p95/p99_latency, error_rate.",
)
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def experiment_create(db, store, key, a, b, split, selector, metrics, as_json) -> None:
    """Run A (name@version) on most devices and B on --split percent of them."""
    r = _fleet(db, store, key).experiments.create(a, b, split, selector, metrics.split(","), time.time())
    if as_json:
        print_json(r)
        return
    console.print(
        f"[green]✓[/] experiment {r['id']}: A on {r['arms']['A']['devices']} device(s), "
        f"B on {r['arms']['B']['devices']}"
    )


@experiment.command("report")
@_options
@click.argument("experiment_id")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def experiment_report(db, store, key, experiment_id, as_json) -> None:
    """Per arm: n, metric, difference (B − A), 95 % interval, p-value, verdict."""
    r = _fleet(db, store, key).experiments.report(experiment_id)
    if as_json:
        print_json(r)
        return
    arms = r["arms"]
    console.print(
        f"[bold]{experiment_id}[/]: A {arms['A']['reporting']}/{arms['A']['devices']} reporting, "
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
    console.print(table)


@fleet.group("retrain")
def retrain() -> None:
    """Retraining requests raised by sustained input drift across devices."""


@retrain.command("list")
@_options
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def retrain_list(db, store, key, as_json) -> None:
    """Open and past requests: artifact, input feature, devices, worst PSI, time range."""
    rows = _fleet(db, store, key).retraining.list()
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
    console.print(table)


@retrain.command("export")
@_options
@click.argument("request_id")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Dataset folder to create.")
@errors_handled
def retrain_export(db, store, key, request_id, out) -> None:
    """Write the request's evidence (request.json, per-device drift histograms) as a dataset folder."""
    folder = _fleet(db, store, key).retraining.export(request_id, out)
    console.print(f"[green]✓[/] {folder}: request.json and drift.npz")

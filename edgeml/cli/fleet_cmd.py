"""`edgeml fleet`: serve the fleet, publish artifacts, list and tag devices, run rollouts, generate broker ACLs.

Every command but `serve` works on the fleet database directly, so it runs beside a serving fleet: the
service picks up new rollouts and aborts on its next tick.
"""

from __future__ import annotations

import os
import time

import click
from rich.table import Table

from edgeml.cli.fleet_bench_cmd import bench
from edgeml.cli.fleet_common import fleet_options, open_fleet
from edgeml.cli.fleet_db_cmd import db
from edgeml.cli.fleet_experiment_cmd import experiment, retrain
from edgeml.cli.fleet_http_cmd import StopRequest, http, http_options, start_http
from edgeml.cli.fleet_loop_hooks import auto_retrain_option, start_loop_hooks
from edgeml.cli.fleet_retrain_flow_cmd import retrain_approve, retrain_flows, retrain_run
from edgeml.cli.fleet_rollout_cmd import rollout
from edgeml.cli.fleet_tag_cmd import tag
from edgeml.cli.mlflow_option import mlflow_option
from edgeml.cli.output import console, errors_handled, human_size, print_json, print_table

__all__ = ["fleet"]


@click.group("fleet")
def fleet() -> None:
    """Push signed artifacts to devices over MQTT in staged rollouts."""


@fleet.command("serve")
@fleet_options
@click.option(
    "--broker",
    default=None,
    help="mqtt://[user:pass@]host:port or mqtts://… of the broker. Default: start an embedded broker.",
)
@click.option("--port", type=int, default=1883, show_default=True, help="Embedded broker port (without --broker).")
@click.option("--chunk-size", type=int, default=64 * 1024, show_default=True, help="Artifact chunk bytes.")
@click.option(
    "--egress-mib-s",
    type=float,
    default=100.0,
    show_default=True,
    help="Chunk bytes per second the broker may send to all fetching devices together: each artifact stream "
    "is paced at this / its devices. Set it to what the broker and its network can carry.",
)
@click.option(
    "--share-group",
    default=None,
    help="Run several instances on one fleet (needs --db postgresql://…): the broker splits the intake over "
    "the group (MQTT 5 shared subscriptions) and one instance at a time drives rollouts.",
)
@click.option("--tls-ca", default=None, help="CA file for mqtts://.")
@click.option("--tls-cert", default=None, help="Client certificate.")
@click.option("--tls-key", default=None, help="Client certificate key.")
@click.option(
    "--http", "http_listen", default=None, metavar="HOST:PORT", help="Also serve the HTTP API (off by default)."
)
@http_options("http-")
@mlflow_option
@auto_retrain_option
@errors_handled
def serve(
    db, store, key, broker, port, chunk_size, egress_mib_s, share_group, tls_ca, tls_cert, tls_key, http_listen,
    mlflow, auto_retrain, require_approval, **http
) -> None:  # fmt: skip
    """Run the fleet service until interrupted (Ctrl-C): intake, chunk serving, rollout steps; with --http,
    the HTTP API too (docs/openapi.yaml).

    One instance per SQLite database (a second is refused). On PostgreSQL, several instances with the same
    --share-group serve one fleet: all take intake, one at a time (the lease holder) steps rollouts,
    deadlines, retraining scans and chunk streams; if it dies another takes over within about 2 s."""
    from edgeml.fleet import FleetService
    from edgeml.fleet.embedded_broker import EmbeddedBroker
    from edgeml.fleet.instance_lease import open_lease
    from edgeml.transport.broker_url import redact_broker_url
    from edgeml.transport.mqtt_transport import MqttTransport, TlsConfig

    api = None
    if http_listen is None and (http["token_file"] or http["read_token_file"]):
        raise click.UsageError("--http-token-file is for the HTTP API: add --http 127.0.0.1:8080 to serve it")
    stop = StopRequest()  # NOTE: before anything starts, so a SIGTERM while starting still stops cleanly
    state = open_fleet(db, store, key)
    lease = open_lease(state.db, share_group)  # NOTE: before anything listens: a refused instance starts nothing
    if http_listen is not None:  # NOTE: first, so a missing token or a taken port stops us before the broker starts
        api = start_http(http_listen, db, store, key, **http)
    embedded = None
    if broker is None:
        embedded = EmbeddedBroker(port)
        embedded.start()
        broker = embedded.url
        console.print(
            f"[yellow]•[/] no --broker given: started an embedded MQTT broker ({embedded.kind}) on {broker} "
            "— fine for trying edgeml on one machine; use Mosquitto, EMQX or HiveMQ in production"
        )
    tls = TlsConfig(tls_ca, tls_cert, tls_key) if (tls_ca or tls_cert) else None
    service = FleetService(
        state,
        MqttTransport(broker, f"edgeml-fleet-{os.getpid()}", tls=tls),
        chunk_size=chunk_size,
        share_group=share_group,
        egress_bytes_s=egress_mib_s * 2**20,
        lease=lease,
    )
    loop = start_loop_hooks(service, mlflow, auto_retrain, db, store, key, require_approval)
    service.start()
    shown = f"{redact_broker_url(broker)} (database {redact_broker_url(state.db.url)}, store {store})"
    console.print(f"[green]✓[/] fleet serving on {shown}; Ctrl-C stops")
    if share_group is not None:
        console.print(f"[green]✓[/] one of the --share-group {share_group} instances (pid {os.getpid()})")
    if api is not None:
        console.print(f"[green]✓[/] HTTP API on {api.url}/v1 (bearer token; docs/openapi.yaml)")
    stop.wait()
    if api is not None:
        api.stop()
    service.stop()
    loop.stop()
    lease.close()
    if embedded is not None:
        embedded.stop()
    console.print("fleet stopped")


@fleet.command("publish")
@fleet_options
@click.argument("artifact", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def publish(db, store, key, artifact, as_json) -> None:
    """Verify ARTIFACT against the fleet's key and store it by content."""
    a = open_fleet(db, store, key).artifacts.publish(artifact, time.time())
    if as_json:
        print_json({k: v for k, v in a.items() if k != "manifest"})
        return
    console.print(
        f"[green]✓[/] published {a['name']}@{a['version']} (release {a['release']}, {a['target']}, "
        f"{human_size(a['size'])}) as {a['sha256'][:16]}…"
    )


@fleet.command("artifacts")
@fleet_options
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def artifacts(db, store, key, as_json) -> None:
    """Published artifacts: name, version, release, target, size, sha256."""
    rows = [{k: v for k, v in a.items() if k != "manifest"} for a in open_fleet(db, store, key).artifacts.all()]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "version", "release", "target", "size", "sha256", "published")
    for a in rows:
        published = time.strftime("%Y-%m-%d %H:%M", time.gmtime(a["published_at"]))
        table.add_row(a["name"], a["version"], str(a["release"]), a["target"], human_size(a["size"]),
                      a["sha256"][:16] + "…", published)  # fmt: skip
    print_table(table)


@fleet.command("devices")
@fleet_options
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only devices with this tag.")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def devices(db, store, key, tags, as_json) -> None:
    """Devices: id, target, model version, state, last seen."""
    from edgeml.fleet.selector import parse_selector

    selector = parse_selector(",".join(f"tag:{t}" for t in tags)) if tags else None
    rows = open_fleet(db, store, key).devices.select(selector)
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
    print_table(table)


@fleet.command("acl")
@fleet_options
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Mosquitto acl_file to write.")
@click.option("--device", "extra", multiple=True, help="Also include this device id (repeatable).")
@click.option(
    "--fleet-user",
    "fleet_users",
    multiple=True,
    default=("edgeml-fleet",),
    show_default=True,
    help="The fleet service's user; repeat it for each instance of a group (client ids are bound to users).",
)
@click.option(
    "--passwords",
    type=click.Path(dir_okay=False),
    help="Also write Mosquitto's password_file (hashed) for the fleet user(s) and every device.",
)
@click.option(
    "--credentials",
    type=click.Path(dir_okay=False),
    help="With --passwords: the plaintext `user:password` file (0600) to read and extend; users without a "
    "password get a random one. Provision each device from its line, then keep the file offline.",
)
@click.option("--conf", type=click.Path(dir_okay=False), help="Also write the mosquitto.conf edgeml recommends.")
@click.option("--listen", default="0.0.0.0:1883", show_default=True, help="With --conf: the listener HOST:PORT.")
@click.option(
    "--tls",
    nargs=3,
    metavar="CAFILE CERTFILE KEYFILE",
    help="With --conf: a TLS listener where devices authenticate with client certificates (CN = device id).",
)
@click.option(
    "--chunk-size", type=int, default=64 * 1024, show_default=True, help="With --conf: the fleet's --chunk-size."
)
@errors_handled
def acl(db, store, key, out, extra, fleet_users, passwords, credentials, conf, listen, tls, chunk_size) -> None:
    """Write per-device topic ACLs for the broker (devices from the database plus --device); with --passwords,
    the hashed password file; with --conf, a Mosquitto config that binds client ids to users and bounds
    per-client queues. Re-run it when devices join: existing passwords are kept."""
    from edgeml.atomic_files import write_bytes_atomic
    from edgeml.fleet.acl import mosquitto_acl
    from edgeml.fleet.mosquitto_config import BrokerLimits, mosquitto_conf
    from edgeml.fleet.mosquitto_passwords import ensure_credentials, password_file
    from edgeml.protocol import check_chunk_size

    if passwords and not credentials:
        raise click.UsageError("--passwords needs --credentials FILE: where the plaintext passwords are kept (0600)")
    ids = sorted(set([d["id"] for d in open_fleet(db, store, key).devices.select()] + list(extra)))
    with open(out, "w") as f:
        f.write(mosquitto_acl(ids, fleet_users))
    console.print(f"[green]✓[/] {out}: ACLs for {len(ids)} device(s) and the fleet user(s) {', '.join(fleet_users)}")
    if passwords:
        known, added = ensure_credentials(credentials, [*fleet_users, *ids])
        write_bytes_atomic(passwords, password_file(known).encode(), mode=0o600)
        console.print(f"[green]✓[/] {passwords}: {len(known)} hashed password(s), mode 0600 (Mosquitto's format)")
        console.print(f"[green]✓[/] {credentials}: plaintext, mode 0600, {len(added)} new password(s) — give each "
                      "device its own line, then keep this file offline")  # fmt: skip
    if conf:
        check_chunk_size(chunk_size)
        text = mosquitto_conf(out, passwords, listen, tuple(tls) if tls else None, BrokerLimits(chunk_size))
        with open(conf, "w") as f:
            f.write(text)
        console.print(f"[green]✓[/] {conf}: mosquitto -c {conf} (client ids bound to users, per-client queues bounded)")
    elif not passwords:
        console.print("[dim]add --passwords FILE --credentials FILE for the password file and --conf FILE for the "
                      "broker config (client ids bound to users, queue limits)[/]")  # fmt: skip


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
    "--drift",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of inputs, in [0, 1], moved to the top bin of the installed model's reference profile "
    "(0: like its calibration data). PSI above 0.25 on 3+ devices, 20 %+ of those reporting, opens a retraining "
    "request at the fleet's next scan (each minute); --drift 0.5 does that on examples/digits.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="version=V:latency_ms=+40,error_rate=0.05,drift=0.5",
    help="Misbehave on one version, to rehearse an abort or a retraining request (repeatable); "
    "a fault's drift replaces --drift on that version.",
)
@click.option("--duration", default="10m", show_default=True, help="How long to run.")
@click.option("--prefix", default="sim", show_default=True, help="Device id prefix.")
@click.option(
    "--processes",
    type=int,
    default=1,
    show_default=True,
    help="Worker processes, each with its share of the devices (one process carries about a thousand).",
)
@click.option("--until", "until_sha", default=None, metavar="SHA256", help="Stop once every device runs this.")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def simulate_cmd(
    n, target, broker, pubkey, disconnect_rate, latency_ms, drift, faults, duration, prefix, processes, until_sha,
    as_json,
) -> None:  # fmt: skip
    """Run simulated devices that speak the real protocol (asyncio, one connection each; --processes N splits
    them over N processes). Each keeps the manifest of the artifact it installed and reports latency, errors
    and input histograms over its reference bins. Ctrl-C stops and still prints the report."""
    from dataclasses import asdict

    from edgeml.artifact import load_public_key
    from edgeml.fleet.rollout_plan import parse_duration
    from edgeml.fleet.simulated_device import check_drift
    from edgeml.fleet.simulation_processes import simulate_processes

    check_drift(drift, "--drift")
    parsed = dict(_parse_fault(f) for f in faults)
    console.print(
        f"[dim]{n} simulated {target} device(s) in {processes} process(es) on {broker} for {duration}; "
        "Ctrl-C stops and reports[/]"
    )
    report = simulate_processes(
        broker, n, processes, target, load_public_key(pubkey), parse_duration(duration), until_sha=until_sha,
        disconnect_rate=disconnect_rate, latency_ms=latency_ms, drift=drift, faults=parsed, prefix=prefix,
    )  # fmt: skip
    if as_json:
        print_json(asdict(report) | {"kib_per_device": round(report.kib_per_device, 1)})
        return
    ended = "interrupted (Ctrl-C) after" if report.interrupted else "ran"
    console.print(
        f"{ended} {report.seconds:.0f} s: devices by version {report.versions}"
        + (f"; converged {report.converged}/{report.devices}" if until_sha else "")
        + f"; disconnects {report.disconnects}; corrupt installs {report.corrupt_installs}; "
        f"received {report.received_bytes / 2**20:.1f} MiB; memory {report.kib_per_device:.0f} KiB per device "
        f"(peak RSS {report.peak_rss_mib:.0f} MiB over {report.processes} process(es))"
    )


def _parse_fault(text: str):
    from edgeml.fleet import FleetError
    from edgeml.fleet.simulated_device import Fault, check_drift

    version, sep, rest = text.partition(":")
    if not version.startswith("version=") or not sep:
        raise FleetError(f"fault {text!r} is not version=V:latency_ms=+40,error_rate=0.05,drift=0.5")
    values = {}
    for item in rest.split(","):
        k, _, v = item.partition("=")
        if k not in ("latency_ms", "error_rate", "drift"):
            raise FleetError(f"fault {text!r}: unknown setting {k!r} (latency_ms, error_rate, drift)")
        try:
            values[k] = float(v)
        except ValueError:
            raise FleetError(f"fault {text!r}: {k} needs a number, not {v!r}") from None
    if "drift" in values:
        check_drift(values["drift"], f"fault {text!r}: drift")
    return version.removeprefix("version="), Fault(**values)


for _group in (tag, rollout, experiment, retrain, http, db, bench):
    fleet.add_command(_group)
for _command in (retrain_run, retrain_approve, retrain_flows):
    retrain.add_command(_command)

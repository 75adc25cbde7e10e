"""Fleet capacity on PostgreSQL: N simulated devices (in worker processes) served by one or two `fleet serve`
instances (--share-group) on one PostgreSQL and one Mosquitto, all started through the real CLI.

    python benchmarks/bench_fleet_scale.py --devices 1000 --instances 1 2 [--size-mb 5] [--processes 2]
        [--disconnect-rate 0.2] [--db postgresql://postgres@127.0.0.1:5432/test] [--out FILE]
        [--no-rollout --idle-s 60]   (registration, idle devices and the telemetry flood only)

Per configuration, in a fresh PostgreSQL schema: registration time (every hello stored); a staged rollout
(canary 1 %, waves 10 %, 100 %, no bake) of an N-byte signed artifact while a share of the devices drop off
mid-download: time from creating it to every execution succeeded, bytes the devices received / (size ×
devices), corrupt installs; then a telemetry flood (valid batches for the registered devices, as fast as one
publisher sends them): messages/s published and rows/s stored, i.e. what the intake sustains. CPU seconds
and peak RSS of the broker, each fleet instance and the simulator, sampled every 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fleet import make_artifact, start_mosquitto

from edgeml.artifact import create_keypair, load_private_key
from edgeml.fleet import Fleet, RolloutPlan
from edgeml.protocol import Telemetry, encode, telemetry_topic
from edgeml.sketches import DDSketch
from edgeml.transport.mqtt_transport import MqttTransport, TransportError

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from edgeml.cli import main; main()"]


class Monitor:
    """CPU seconds (user + system) and peak RSS per named process tree, sampled every 0.5 s."""

    def __init__(self) -> None:
        self.trees: dict[str, int] = {}
        self.cpu: dict[str, dict[int, float]] = {}
        self.peak_rss: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, name: str, pid: int) -> None:
        self.trees[name], self.cpu[name], self.peak_rss[name] = pid, {}, 0.0

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for name, pid in list(self.trees.items()):
                self._sample(name, pid)

    def _sample(self, name: str, pid: int) -> None:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        rss = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                self.cpu[name][p.pid] = t.user + t.system
                rss += p.memory_info().rss
            except psutil.Error:
                continue
        self.peak_rss[name] = max(self.peak_rss[name], rss / 2**20)

    def figures(self) -> dict[str, dict[str, float]]:
        self._stop.set()
        self._thread.join()
        return {
            n: {"cpu_s": round(sum(self.cpu[n].values()), 1), "peak_rss_mib": round(self.peak_rss[n], 1)}
            for n in self.trees
        }


def fresh_schema(base: str) -> tuple[str, str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def start_instance(work: Path, name: str, db: str, key: Path, url: str, egress: float) -> subprocess.Popen:
    log = open(work / f"{name}.log", "wb")  # noqa: SIM115  NOTE: the child writes it until it stops
    cmd = [*CLI, "fleet", "serve", "--db", db, "--store", str(work / "store"), "--key", str(key), "--broker", url,
           "--share-group", "bench", "--egress-mib-s", str(egress)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while "fleet serving on" not in (work / f"{name}.log").read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start: {(work / f'{name}.log').read_text()}")
        time.sleep(0.2)
    return proc


def wait_for(condition, timeout: float, every: float = 0.5) -> float | None:
    """Seconds until `condition()` held, or None after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(every)
    return None


def count(fleet: Fleet, sql: str) -> int:
    return int(fleet.db.query(sql)[0][0])


def telemetry_flood(url: str, fleet: Fleet, device_ids: list[str], seconds: float) -> dict:
    """Publish valid telemetry batches for the registered devices for `seconds`; then wait for the intake to
    store them: published/s, stored/s, and how long the backlog took to drain."""
    now = int(time.time())
    sketch = DDSketch()
    for v in (4.0, 5.0, 6.0):
        sketch.add(v)
    payloads = [encode(Telemetry(1_000_000 + s, now - 60, now, None, sketch, 100, 0)) for s in range(100_000)]
    before = count(fleet, "SELECT COUNT(*) FROM telemetry")
    pub = MqttTransport(url, "bench-flood")
    pub.connect(timeout=10)
    sent, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        payload = payloads[sent // len(device_ids)]
        for device_id in device_ids:
            while True:
                try:
                    pub.publish(telemetry_topic(device_id), payload, qos=1)
                    break
                except TransportError:  # NOTE: paho's queue is full: the broker sets the pace
                    time.sleep(0.005)
            sent += 1
    publish_s = time.monotonic() - start
    stored, last_change, last = 0, time.monotonic(), before
    while time.monotonic() - last_change < 10 and stored < sent:
        time.sleep(1)
        now_rows = count(fleet, "SELECT COUNT(*) FROM telemetry")
        if now_rows != last:
            last, last_change = now_rows, time.monotonic()
        stored = now_rows - before
    pub.close()
    drain_s = last_change - start
    return {
        "published": sent,
        "published_per_s": round(sent / publish_s),
        "stored": stored,
        "stored_per_s": round(stored / drain_s) if drain_s > 0 else None,
        "drained_after_s": round(drain_s, 1),
        "lost": sent - stored,
    }


def leader_pid(fleet: Fleet) -> int | None:
    """The OS pid of the instance holding the lease: its lease connection's application_name names it."""
    from edgeml.fleet.instance_lease import LEADER
    from edgeml.fleet.postgres_database import lock_namespace

    rows = fleet.db.query(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = "
        "'advisory' AND l.classid::bigint = ? AND l.objid::bigint = ? AND l.objsubid = 2 AND l.granted",
        (lock_namespace(fleet.db._connection()), LEADER),
    )
    return int(rows[0][0].rsplit(" pid ", 1)[1]) if rows else None


def kill_the_leader(fleet: Fleet, timeout: float) -> dict:
    """Once wave 1 (10 %) is exposed, kill -9 the leading instance; how long until another leads."""
    wait_for(lambda: count(fleet, "SELECT MAX(wave) FROM rollouts") >= 1, timeout, every=0.2)
    first = leader_pid(fleet)
    os.kill(first, signal.SIGKILL)
    killed_at = time.monotonic()
    took = wait_for(lambda: leader_pid(fleet) not in (None, first), 60, every=0.05)
    wave = count(fleet, "SELECT MAX(wave) FROM rollouts")
    return {"pid": first, "next": leader_pid(fleet), "takeover_s": took and round(time.monotonic() - killed_at, 2),
            "at_wave": wave}  # fmt: skip


def run_config(args, instances: int, work: Path, url: str, key: Path, artifact_dir: Path) -> dict:
    schema, db = fresh_schema(args.db)
    monitor = Monitor()
    procs: list[subprocess.Popen] = []
    sim = None
    try:
        fleet = Fleet(db, work / "store", load_private_key(key))
        art = fleet.artifacts.publish(artifact_dir, time.time())
        procs = [
            start_instance(work, f"fleet-{instances}-{i}", db, key, url, args.egress_mib_s) for i in range(instances)
        ]
        for i, p in enumerate(procs):
            monitor.watch(f"fleet_{i}", p.pid)
        sim_out = work / f"sim-{instances}.json"
        sim_cmd = [*CLI, "fleet", "simulate", "--broker", url, "--pubkey", str(key.with_suffix(".pub")),
                   "--devices", str(args.devices), "--processes", str(args.processes),
                   *([] if args.no_rollout else ["--until", art["sha256"]]),
                   "--disconnect-rate", str(args.disconnect_rate), "--duration", f"{int(args.timeout)}s",
                   "--prefix", "dev", "--json"]  # fmt: skip
        sim = subprocess.Popen(sim_cmd, stdout=open(sim_out, "w"), stderr=subprocess.DEVNULL,  # noqa: SIM115
                               env=os.environ | {"PYTHONPATH": str(ROOT)})  # fmt: skip
        monitor.watch("simulator", sim.pid)
        monitor.start()
        registered_s = wait_for(lambda: count(fleet, "SELECT COUNT(*) FROM devices") >= args.devices, args.timeout)
        killed = converge_s = None
        if args.no_rollout:  # NOTE: the devices idle (hello, status, telemetry every 10 s) for a while, then stop
            time.sleep(args.idle_s)
            sim.send_signal(signal.SIGINT)  # NOTE: the simulator's report survives Ctrl-C
        else:
            plan = RolloutPlan.build("1%", "10%,100%", "0s", "30m", [])
            rollout = fleet.rollouts.create(art["sha256"], "all", plan, time.time())["id"]
            started = time.monotonic()
            killed = kill_the_leader(fleet, args.timeout) if args.kill_leader and instances > 1 else None
            done = f"SELECT COUNT(*) FROM executions WHERE rollout_id='{rollout}' AND state='succeeded'"
            wait_for(lambda: count(fleet, done) >= args.devices, args.timeout)
            converge_s = time.monotonic() - started
        sim.wait(timeout=args.timeout)
        text = sim_out.read_text()
        report = json.loads(text[text.index("{") :])
        ids = [r[0] for r in fleet.db.query("SELECT id FROM devices ORDER BY id")]
        flood = telemetry_flood(url, fleet, ids, args.flood_s)
        states = {r[0]: r[1] for r in fleet.db.query("SELECT state, COUNT(*) FROM executions GROUP BY state")}
        sequences = {r[0]: r[1] for r in fleet.db.query("SELECT sequence, COUNT(*) FROM desired GROUP BY sequence")}
        committed = fleet.db.query("SELECT COUNT(DISTINCT device_id), COUNT(*) FROM events WHERE kind='committed'")[0]
        fleet.db.close()
    finally:
        for p in [*procs, *([sim] if sim is not None and sim.poll() is None else [])]:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        drop_schema(args.db, schema)
    return {
        "instances": instances,
        "devices": args.devices,
        "simulator_processes": args.processes,
        "artifact_bytes": art["size"],
        "disconnect_rate": args.disconnect_rate,
        "registered_s": registered_s and round(registered_s, 1),
        "leader_killed": killed,
        "converge_s": converge_s and round(converge_s, 1),
        "converged": report["converged"],
        "corrupt_installs": report["corrupt_installs"],
        "wire_ratio": None if args.no_rollout else round(report["received_bytes"] / (art["size"] * args.devices), 3),
        "executions": states,
        "desired_sequences": sequences,
        "committed_events": {"devices": committed[0], "rows": committed[1]},
        "simulator_kib_per_device": report["kib_per_device"],
        "telemetry": flood,
        "processes": monitor.figures(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--processes", type=int, default=2, help="simulator worker processes")
    ap.add_argument("--size-mb", type=float, default=5.0)
    ap.add_argument("--disconnect-rate", type=float, default=0.2)
    ap.add_argument("--egress-mib-s", type=float, default=60.0)
    ap.add_argument("--flood-s", type=float, default=15.0, help="seconds of telemetry flood")
    ap.add_argument("--kill-leader", action="store_true", help="with 2+ instances: kill -9 the leader mid-rollout")
    ap.add_argument("--no-rollout", action="store_true",
                    help="no artifact transfer: registration, --idle-s of idle devices, the telemetry flood (for "
                         "more devices than the simulator can download to on this machine)")  # fmt: skip
    ap.add_argument("--idle-s", type=float, default=60.0, help="with --no-rollout: seconds the devices idle")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--out", default="benchmarks/results/fleet_scale.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeml-fleet-scale-"))
    broker, url = start_mosquitto(work)
    try:
        key, _ = create_keypair(work / "keys")
        artifact_dir = make_artifact(work, key, args.size_mb)
        runs = []
        for n in args.instances:
            broker_cpu = sum(psutil.Process(broker.pid).cpu_times()[:2])
            run = run_config(args, n, work, url, key, artifact_dir)
            b = psutil.Process(broker.pid)
            run["processes"]["mosquitto"] = {
                "cpu_s": round(sum(b.cpu_times()[:2]) - broker_cpu, 1),
                "rss_mib_after": round(b.memory_info().rss / 2**20, 1),
            }
            runs.append(run)
            print(json.dumps(run, indent=2), flush=True)
        out = {
            "runs": runs,
            "host": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
            "python": sys.version.split()[0],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    finally:
        broker.terminate()


if __name__ == "__main__":
    main()

"""Fleet transfer benchmark: N simulated devices (asyncio, one MQTT connection each) fetch a 5 MB signed
artifact through a real Mosquitto while a share of them drop off mid-transfer and come back.

    python benchmarks/bench_fleet.py [--devices 1000] [--size-mb 5] [--disconnect-rate 0.2] [--out FILE]

Reports, in one run: raw Mosquitto loopback throughput (QoS 1, 64 KiB, one publisher → one subscriber)
as the limit to compare against; time for every device to converge on the new artifact; bytes delivered
to devices / (artifact size × devices); corrupt installs (must be 0); executions left unfinished (must
be 0); peak RSS of the process running all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from edgeml.artifact import create_keypair, load_private_key, write_artifact
from edgeml.fleet import Fleet, FleetService, RolloutPlan
from edgeml.fleet.mosquitto_config import BrokerLimits
from edgeml.fleet.simulation import simulate
from edgeml.transport.mqtt_transport import MqttTransport


def start_mosquitto(folder: Path, settings: str = "recommended") -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = folder / "mosquitto.conf"
    # NOTE: Mosquitto queues up to max_queued_messages per client and drops the rest silently; a shared chunk
    # stream to many slow subscribers must also be capped in bytes, or the broker's memory explodes (15 GB
    # seen with 20000 × 64 KiB allowed per client and 1000 devices). Devices re-request what was dropped.
    # "recommended": the limits `edgeml fleet acl --conf` writes; "default": Mosquitto's own defaults.
    limits = BrokerLimits().lines() if settings == "recommended" else []
    conf.write_text("\n".join([f"listener {port} 127.0.0.1", "allow_anonymous true", "max_connections -1",
                               "user root", *limits]) + "\n")  # fmt: skip
    proc = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"mqtt://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def raw_throughput(url: str, messages: int = 400, size: int = 64 * 1024) -> float:
    """MiB/s through the broker, QoS 1, one publisher → one subscriber, over the messages that arrived."""
    done, times = threading.Event(), []

    def on_message(topic, payload):
        times.append(time.perf_counter())
        if len(times) == messages:
            done.set()

    sub, pub = MqttTransport(url, "raw-sub"), MqttTransport(url, "raw-pub")
    sub.subscribe("raw/t", on_message)
    sub.connect()
    pub.connect()
    time.sleep(0.5)  # NOTE: the subscription must be active before the first publish
    payload = os.urandom(size)
    start = time.perf_counter()
    for _ in range(messages):
        pub.publish("raw/t", payload, qos=1)
    done.wait(60)
    sub.close()
    pub.close()
    if len(times) < 2:
        raise RuntimeError("the raw throughput subscriber received nothing")
    return len(times) * size / (times[-1] - start) / 2**20


def make_artifact(folder: Path, key_path: Path, size_mb: float) -> Path:
    manifest = {
        "schema_version": 1,
        "name": "bench",
        "version": "1.0.0",
        "release": 1_000_000,
        "target": {"id": "cpu-ort"},
        "io": {},
        "metrics": {},
        "decision": {},
        "reference_profile": {},
        "provenance": {},
    }
    out = folder / "artifact"
    write_artifact(out, {"model.bin": os.urandom(int(size_mb * 2**20))}, manifest, load_private_key(key_path))
    return out


async def run(args, url: str, fleet: Fleet, sha: str, size: int) -> dict:
    async def roll_out_when_registered() -> None:
        while len(fleet.devices.select()) < args.devices:
            await asyncio.sleep(0.5)
        plan = RolloutPlan.build("100%", "", "0s", "30m", [])
        fleet.rollouts.create(sha, "all", plan, time.time())
        starts.append(time.monotonic())

    starts: list[float] = []
    roller = asyncio.create_task(roll_out_when_registered())
    report = await simulate(
        url,
        args.devices,
        "cpu-ort",
        fleet.key.public_key(),
        until_sha=sha,
        duration_s=args.timeout,
        disconnect_rate=args.disconnect_rate,
        telemetry_period_s=1e9,
    )
    roller.cancel()
    converge = (time.monotonic() - starts[0]) if starts else None
    return {"report": report, "converge_s": converge}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--size-mb", type=float, default=5.0)
    ap.add_argument("--disconnect-rate", type=float, default=0.2, help="share of devices dropping mid-transfer")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--egress-mib-s", type=float, default=100.0, help="the fleet's chunk egress budget")
    ap.add_argument("--broker-settings", choices=["recommended", "default"], default="recommended",
                    help="per-client limits: edgeml's (`fleet acl --conf`) or Mosquitto's defaults")  # fmt: skip
    ap.add_argument("--out", default="benchmarks/results/fleet.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeml-fleet-bench-"))
    broker, url = start_mosquitto(work, args.broker_settings)
    client_drops = _DropCounter()
    logging.getLogger().addHandler(client_drops)
    try:
        mib_s = raw_throughput(url)
        key, _ = create_keypair(work / "keys")
        fleet = Fleet(work / "fleet.sqlite", work / "store", load_private_key(key))
        artifact = fleet.artifacts.publish(make_artifact(work, key, args.size_mb), time.time())
        service = FleetService(
            fleet, MqttTransport(url, "bench-fleet"), tick_s=0.5, egress_bytes_s=args.egress_mib_s * 2**20
        )
        service.start()
        result = asyncio.run(run(args, url, fleet, artifact["sha256"], artifact["size"]))
        time.sleep(2)  # last statuses
        service.stop()
        broker_rss = _peak_rss_mib(broker.pid)
        report = result["report"]
        executions = fleet.db.query("SELECT state, COUNT(*) n FROM executions GROUP BY state")
        unfinished = sum(r["n"] for r in executions if r["state"] in ("pending", "in_progress", "reverting"))
        figures = {
            "devices": args.devices,
            "artifact_bytes": artifact["size"],
            "disconnect_rate": args.disconnect_rate,
            "raw_mosquitto_mib_s": round(mib_s, 1),
            "converge_s": result["converge_s"] and round(result["converge_s"], 1),
            "converged": report.converged,
            "disconnects": report.disconnects,
            "wire_ratio": round(report.received_bytes / (artifact["size"] * args.devices), 3),
            "received_bytes": report.received_bytes,
            "ideal_bytes": artifact["size"] * args.devices,
            "client_queue_drops": client_drops.count,
            "broker_settings": args.broker_settings,
            "broker_peak_rss_mib": broker_rss,
            "egress_budget_mib_s": args.egress_mib_s,
            "fleet_chunks_sent": service.chunks.sent_chunks,
            "fleet_chunks_resent": service.chunks.resent_chunks,
            "chunks_lost_by_devices": service.chunks.lost_chunks,
            "corrupt_installs": report.corrupt_installs,
            "unfinished_executions": unfinished,
            "executions": {r["state"]: r["n"] for r in executions},
            "delivered_mib_s": round(report.received_bytes / 2**20 / result["converge_s"], 1)
            if result["converge_s"]
            else None,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "python": sys.version.split()[0],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        print(json.dumps(figures, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        broker.terminate()
        shutil.rmtree(work, ignore_errors=True)


class _DropCounter(logging.Handler):
    """Counts aiomqtt's "Message queue is full. Discarding message." (client-side drops)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "queue is full" in record.getMessage()


def _peak_rss_mib(pid: int) -> float | None:
    """The broker's peak resident memory (VmHWM), read before it stops."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


if __name__ == "__main__":
    main()

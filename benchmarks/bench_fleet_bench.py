"""Bench jobs on devices: the agent's measurement overhead, and the wall time of a job on many devices.

    python benchmarks/bench_fleet_bench.py [--devices 50] [--seconds 2] [--repeats 3] [--out FILE]

1. Overhead: the same signed digits artifact timed by `edgeml bench` on this host and by a bench job on a
   local, real agent (over a real Mosquitto, through the fleet service), alternating host / agent `--repeats`
   times; the figure is the median of the per-pair p50 ratios (agent / host). The agent is idle otherwise.
2. Wall time: one `edgeml fleet bench`-equivalent job (create → publish → answers → settled) on the real agent
   plus N simulated devices (`edgeml fleet simulate` in a subprocess), each timing for `--seconds`, one more
   simulated device registered and then offline (it must come back as "offline", not be waited for).

Every figure is recorded with this host's ISA; this machine is shared and noisy, so read ratios, not ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fleet import start_mosquitto

import edgeml
from edgeml.artifact import create_keypair, load_private_key, load_public_key
from edgeml.cli.fleet_bench_cmd import wait_for_answers
from edgeml.device_agent import Agent, AgentConfig, Installer
from edgeml.device_agent.config.agent_config import AgentSection, BrokerSection, TelemetrySection
from edgeml.fleet import Fleet, FleetService
from edgeml.fleet.bench_jobs import BenchSettings
from edgeml.fleet.simulated_device import SimulatedDevice
from edgeml.host import host_info
from edgeml.transport.mqtt_transport import MqttTransport

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"


def wait(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        time.sleep(0.2)


def job(fleet: Fleet, selector: str, seconds: float, deadline_s: float = 300.0) -> tuple[dict, float]:
    start = time.monotonic()
    created = fleet.bench.create("digits@1.0.0", selector, BenchSettings(int(seconds * 1000), 0, 20, 1, deadline_s),
                                 time.time())  # fmt: skip
    status = wait_for_answers(fleet, created["id"], quiet=True)
    return status, time.monotonic() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "fleet_bench.json"))
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edgeml-fleet-bench-"))
    priv, pub = create_keypair(tmp / "keys")
    artifact = tmp / "digits"
    edgeml.compile(str(DIGITS / "model.onnx"), "cpu-ort", key=priv, out=artifact, cache_dir=tmp / "cache",
                   version="1.0.0", name="digits", options={"precision": "fp32"})  # fmt: skip
    broker, url = start_mosquitto(tmp)
    fleet = Fleet(tmp / "fleet.sqlite", tmp / "store", load_private_key(priv))
    service = FleetService(fleet, MqttTransport(url, "fleet-bench"), tick_s=0.2)
    service.start()
    fleet.artifacts.publish(artifact, time.time())
    state = tmp / "agent"
    assert Installer(state, pub, "cpu-ort", ["onnxruntime"]).install(artifact).ok
    config = AgentConfig(agent=AgentSection(device_id="real-agent", target="cpu-ort", state_dir=str(state),
                                            fleet_public_key=str(pub)),
                         broker=BrokerSection(url=url), telemetry=TelemetrySection(period_s=3600.0))  # fmt: skip
    agent = Agent(config).start()
    sim = None
    try:
        wait(lambda: (fleet.devices.get("real-agent") or {}).get("online"))
        pairs = []
        for _ in range(args.repeats):
            host = edgeml.bench(artifact, seconds=args.seconds, pubkey=pub)
            status, _ = job(fleet, "id=real-agent", args.seconds)
            device = status["results"][0]["result"]["latency"]["artifact"]
            pairs.append({"host_p50_ms": host.latency["artifact"].p50_ms, "agent_p50_ms": device["p50_ms"],
                          "ratio": device["p50_ms"] / host.latency["artifact"].p50_ms})  # fmt: skip
        gone = SimulatedDevice("gone-01", "cpu-ort", None, load_public_key(pub))
        gone.transport = MqttTransport(url, "gone-01", will=gone.will())
        gone.start()
        env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
        sim = subprocess.Popen([sys.executable, "-c", "from edgeml.cli import main; main()", "fleet", "simulate",
                                "--devices", str(args.devices), "--broker", url, "--pubkey", str(pub),
                                "--duration", "30m"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
        wait(lambda: sum(d["online"] for d in fleet.devices.select()) >= args.devices + 2)
        gone.goodbye()
        gone.transport.close()
        wait(lambda: not fleet.devices.get("gone-01")["online"])
        status, wall = job(fleet, "all", args.seconds)
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(30)
        agent.stop()
        service.stop()
        broker.terminate()
        broker.wait(10)
    states: dict[str, int] = {}
    for r in status["results"]:
        states[r["state"]] = states.get(r["state"], 0) + 1
    report = {
        "host": host_info().to_dict(),
        "seconds_per_measurement": args.seconds,
        "overhead": {"pairs": pairs, "median_ratio_agent_over_host": statistics.median(p["ratio"] for p in pairs)},
        "job": {
            "devices": len(status["results"]),
            "simulated": args.devices,
            "wall_s": round(wall, 2),
            "timing_s_per_device": args.seconds,
            "states": states,
        },
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

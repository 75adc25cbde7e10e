"""Rollouts under faults, on a real Mosquitto with the fleet service and N simulated devices (one MQTT client
each): (A) a canary whose devices run 40 ms slower, with one exposed device offline from the start — time from
the canary's exposure to the automatic abort; (B) a hotfix after that abort — time until every device runs it,
the offline one included (it comes back after the hotfix was exposed, having missed the revert).

    python benchmarks/bench_rollout_faults.py [--devices 30] [--canary 30%] [--deadline 30m] [--out FILE]

Run it against another checkout (PYTHONPATH=/path/to/other) to compare; a step the other code refuses is
reported as such, not as a crash.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import Mosquitto  # noqa: E402  (the tests' own broker starter: a free port, its own process)

import edgeml  # noqa: E402
from edgeml.artifact import create_keypair, load_private_key, load_public_key  # noqa: E402
from edgeml.errors import EdgemlError  # noqa: E402
from edgeml.fleet import Fleet, FleetService, RolloutPlan  # noqa: E402
from edgeml.fleet.simulated_device import Fault, SimulatedDevice  # noqa: E402
from edgeml.transport.mqtt_transport import MqttTransport  # noqa: E402


def compile_releases(folder: Path, key: Path) -> dict[str, Path]:
    out = {}
    for version in ("1.2.3", "1.3.0", "1.2.4"):
        out[version] = folder / version
        model = str(ROOT / "examples/digits/model.onnx")
        options = {"precision": "fp32"}
        edgeml.compile(model, "cpu-ort", key=key, out=out[version], cache_dir=folder / "cache", version=version,
                       name="digits", options=options)  # fmt: skip
    return out


class Bench:
    def __init__(self, folder: Path, url: str, key: tuple[Path, Path], n: int) -> None:
        self.folder, self.url, self.key = folder, url, key
        self.service = self.start_service()
        pub = load_public_key(key[1])
        faults = {"1.3.0": Fault(latency_ms=40.0)}
        self.devices = [SimulatedDevice(f"cam-{i:03d}", "cpu-ort", None, pub, faults=faults, seed=i) for i in range(n)]
        for d in self.devices:
            self.connect(d)

    def fleet(self) -> Fleet:
        return Fleet(self.folder / "fleet.sqlite", self.folder / "store", load_private_key(self.key[0]))

    def start_service(self) -> FleetService:
        service = FleetService(self.fleet(), MqttTransport(self.url, f"fleet-{time.monotonic_ns()}"), tick_s=0.2)
        service.start()
        return service

    def connect(self, d: SimulatedDevice) -> None:
        d.transport = MqttTransport(self.url, d.device_id, will=d.will())
        d.start()

    def wait(self, predicate, timeout: float, devices=None, telemetry=True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for d in devices if devices is not None else self.devices:
                if d.transport.connected:
                    d.poll(quiet_s=1.0)
                    if telemetry and d.current:
                        d.emit_telemetry(calls=20)
            if value := predicate():
                return value
            time.sleep(0.3)
        return None

    def status(self, rollout_id: str) -> dict:
        return self.service.fleet.rollouts.status(rollout_id)


def run(n: int, canary: str, deadline: str, releases: dict[str, Path], folder: Path, url: str, key) -> dict:
    b = Bench(folder, url, key, n)
    result: dict = {"devices": n, "canary": canary, "deadline": deadline}
    b.wait(lambda: len(b.service.fleet.devices.select()) == n, 30)
    for version in ("1.2.3", "1.3.0", "1.2.4"):
        b.service.fleet.artifacts.publish(releases[version], time.time())
    first = b.service.fleet.rollouts.create("digits@1.2.3", "all", RolloutPlan.build("100%", "", "0s", "5m", []),
                                            time.time())  # fmt: skip
    b.wait(lambda: b.status(first["id"])["state"] == "completed", 120, telemetry=False)
    for d in b.devices:
        d.emit_telemetry(calls=200)

    # A: a failing canary with one exposed device offline
    b.service.stop()
    fleet = b.fleet()
    plan = RolloutPlan.build(canary, "100%", "10m", deadline, ["p95_latency<=1.2*baseline"])
    bad = fleet.rollouts.create("digits@1.3.0", "all", plan, time.time())
    fleet.db.close()
    exposed = [d for d in b.devices if d.device_id in {e["device_id"] for e in bad["executions"] if e["wave"] == 0}]
    away = exposed[0]
    away.transport.close()
    b.service = b.start_service()
    online = [d for d in b.devices if d is not away]
    b.wait(lambda: b.status(bad["id"])["wave"] >= 0, 30, online)
    exposed_at = b.status(bad["id"])["wave_started_at"]
    aborted = b.wait(lambda: b.status(bad["id"])["state"] == "aborted", 3600, online)
    result["canary_devices"] = len(exposed)
    result["abort_s"] = round(time.time() - exposed_at, 2) if aborted else None
    result["abort_reason"] = b.status(bad["id"])["reason"]
    b.wait(lambda: all(d.current.version == "1.2.3" for d in online), 120, online)

    # B: the hotfix, while the offline device has not reverted
    began = time.time()
    try:
        fixed = b.service.fleet.rollouts.create("digits@1.2.4", "all", RolloutPlan.build("25%", "100%", "5s", "5m", []),
                                                time.time())  # fmt: skip
    except EdgemlError as exc:
        result["hotfix"] = f"refused: {exc.message}"
        return finish(b, result)
    b.wait(lambda: any(e["device_id"] == away.device_id and e["state"] != "pending"
                       for e in b.status(fixed["id"])["executions"]), 120, online)  # fmt: skip
    b.connect(away)  # back once the hotfix replaced the revert it never received
    done = b.wait(lambda: all(d.current and d.current.version == "1.2.4" for d in b.devices), 600)
    result["hotfix_all_devices_s"] = round(time.time() - began, 2) if done else None
    completed = b.wait(lambda: b.status(fixed["id"])["state"] in ("completed", "aborted"), 120)
    result["hotfix_rollout"] = b.status(fixed["id"])["state"] if completed else "still running"
    result["hotfix_rollout_s"] = round(time.time() - began, 2)
    result["hotfix_plan"] = "canary 25%, waves 100%, bake 5s"
    result["refusals"] = sorted({c for d in b.devices for c in d.rejected})
    result["offline_device_in_aborted_rollout"] = next(
        e["state"] for e in b.status(bad["id"])["executions"] if e["device_id"] == away.device_id
    )
    result["on_1.2.4"] = sum(1 for d in b.devices if d.current and d.current.version == "1.2.4")
    return finish(b, result)


def finish(b: Bench, result: dict) -> dict:
    for d in b.devices:
        d.transport.close()
    b.service.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=30)
    parser.add_argument("--canary", default="30%")
    parser.add_argument("--deadline", default="30m")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgeml-faults-") as tmp:
        folder = Path(tmp)
        key = create_keypair(folder / "keys")
        releases = compile_releases(folder / "releases", key[0])
        broker = Mosquitto(folder)
        broker.start()
        try:
            result = run(args.devices, args.canary, args.deadline, releases, folder / "fleet", broker.url, key)
        finally:
            broker.stop()
    result["host"] = f"{platform.processor() or platform.machine()}, {platform.python_version()}"
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

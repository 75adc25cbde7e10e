"""`edgeml fleet bench` through the real CLI on a real Mosquitto: the real agent plus 50 simulated devices
(`edgeml fleet simulate`) answer within the deadline, a device that is offline is reported offline, and the
agent keeps serving its active model throughout (a predict loop alongside sees no error and no model change)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgeml.artifact import load_private_key, load_public_key
from edgeml.device_agent import Agent, AgentConfig, Installer
from edgeml.device_agent.config.agent_config import AgentSection, BrokerSection, TelemetrySection
from edgeml.fleet import Fleet, FleetService
from edgeml.fleet.simulated_device import SimulatedDevice
from edgeml.host import host_info
from edgeml.transport.mqtt_transport import MqttTransport

pytestmark = [pytest.mark.broker, pytest.mark.slow]  # NOTE: a real agent, 50 devices, a compile: 30–60 s
X = np.zeros((1, 1, 8, 8), np.float32)
SIMULATED = 50


def _cli(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    code = "import sys; from edgeml.cli import main; sys.argv = ['edgeml', *sys.argv[1:]]; main()"
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)} | (env or {})
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)  # fmt: skip


def _agent(tmp_path, keypair, url, artifact) -> Agent:
    state = tmp_path / "agent"
    result = Installer(state, keypair[1], "cpu-ort", ["onnxruntime"]).install(artifact)
    assert result.ok, result.describe()
    config = AgentConfig(
        agent=AgentSection(
            device_id="real-agent", target="cpu-ort", state_dir=str(state), fleet_public_key=str(keypair[1])
        ),
        broker=BrokerSection(url=url),
        telemetry=TelemetrySection(period_s=3600.0),
    )
    return Agent(config).start()


def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


class PredictLoop(threading.Thread):
    def __init__(self, agent: Agent) -> None:
        super().__init__(daemon=True)
        self.agent, self.stop, self.calls, self.errors, self.models = agent, threading.Event(), 0, [], set()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.agent.predict({"input": X})
                self.calls += 1
            except Exception as exc:
                self.errors.append(repr(exc))
            self.models.add(self.agent.serving.model.sha256)
            time.sleep(0.002)


def test_fleet_bench_on_the_real_agent_and_50_simulated_devices(tmp_path, keypair, broker, releases):
    db, store = str(tmp_path / "fleet.sqlite"), str(tmp_path / "store")
    fleet = Fleet(db, store, load_private_key(keypair[0]))
    service = FleetService(fleet, MqttTransport(broker.url, "fleet-bench"), tick_s=0.2)
    service.start()
    fleet.artifacts.publish(releases["1.2.3"], time.time())
    fleet.artifacts.publish(releases["1.3.0"], time.time())
    gone = SimulatedDevice("gone-01", "cpu-ort", None, load_public_key(keypair[1]))
    gone.transport = MqttTransport(broker.url, "gone-01", will=gone.will())
    gone.start()
    agent = _agent(tmp_path, keypair, broker.url, releases["1.2.3"])
    sim = subprocess.Popen(
        [sys.executable, "-c", "import sys; from edgeml.cli import main; sys.argv=['edgeml', *sys.argv[1:]]; main()",
         "fleet", "simulate", "--devices", str(SIMULATED), "--broker", broker.url, "--pubkey", str(keypair[1]),
         "--duration", "5m"],
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    loop = PredictLoop(agent)
    try:
        _wait(lambda: len([d for d in fleet.devices.select() if d["online"]]) >= SIMULATED + 2)
        gone.goodbye()
        gone.transport.close()
        _wait(lambda: not fleet.devices.get("gone-01")["online"], 10)
        serving_before = agent.serving.model.sha256
        loop.start()
        slots_before = agent.installer.state().slots
        out = _cli("fleet", "bench", "digits@1.3.0", "--devices", "all", "--baseline", "digits@1.2.3",
                   "--seconds", "1", "--deadline", "90", "--json", "--html", str(tmp_path / "report.html"),
                   "--db", db, "--store", store, "--key", str(keypair[0]))  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        status = json.loads(out.stdout)
        loop.stop.set()
        loop.join(5)
    finally:
        sim.terminate()
        sim.wait(30)
        agent.stop()
        service.stop()
    rows = {r["device_id"]: r for r in status["results"]}
    assert len(rows) == SIMULATED + 2
    assert rows["gone-01"]["state"] == "offline"
    real = rows["real-agent"]
    assert real["state"] == "done", real["reason"]
    result = real["result"]
    assert result["host"]["description"] == host_info().describe()
    assert result["runtimes"]["onnxruntime"] and result["latency"]["artifact"]["n"] >= 50
    assert {"artifact", "baseline"} == set(result["latency_sketch_ms"])
    assert result["ratio"] > 0 and result["comparison"]["verdict"] in ("faster", "slower", "same")
    assert sum(r["state"] == "done" for r in rows.values()) == SIMULATED + 1
    assert status["wall_s"] < 90
    # the agent served throughout, the model it serves and its slots unchanged, the scratch folder gone
    assert loop.calls > 0 and loop.errors == []
    assert loop.models == {serving_before}
    assert agent.installer.state().slots == slots_before
    assert not any((tmp_path / "agent" / "bench").iterdir())
    assert "<svg" in (tmp_path / "report.html").read_text()


def test_compile_measure_on_the_real_agent_decides_by_the_device(tmp_path, keypair, broker, releases):
    db, store = str(tmp_path / "fleet.sqlite"), str(tmp_path / "store")
    fleet = Fleet(db, store, load_private_key(keypair[0]))
    service = FleetService(fleet, MqttTransport(broker.url, "fleet-measure"), tick_s=0.2)
    service.start()
    agent = _agent(tmp_path, keypair, broker.url, releases["1.2.3"])
    try:
        _wait(lambda: (fleet.devices.get("real-agent") or {}).get("online"))
        model = str(Path(__file__).resolve().parents[2] / "examples" / "digits" / "model.onnx")
        out = _cli("compile", model, "--target", "cpu-ort", "--key", str(keypair[0]), "--out",
                   str(tmp_path / "built"), "--measure-on", "real-agent", "--json",
                   env={"EDGEML_FLEET_DB": db, "EDGEML_FLEET_STORE": store})  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        offline = _cli("compile", model, "--target", "cpu-ort", "--key", str(keypair[0]), "--out",
                       str(tmp_path / "never"), "--measure-on", "no-such-device",
                       env={"EDGEML_FLEET_DB": db, "EDGEML_FLEET_STORE": store})  # fmt: skip
    finally:
        agent.stop()
        service.stop()
    assert offline.returncode != 0 and "no-such-device" in offline.stderr and not (tmp_path / "never").exists()
    result = json.loads(out.stdout)
    assert set(result["measured_on_device"]) == {"fp32", "int8-static"}
    m = json.loads((tmp_path / "built" / "manifest.json").read_text())
    cands, verdicts = m["decision"]["candidates"], m["decision"]["verdicts"]
    for c in cands.values():
        assert c["measured_on"]["latency"]["device"] == "real-agent"
        assert c["measured_on"]["latency"]["description"] == host_info().describe()  # NOTE: the agent runs here
        assert c["latency"]["p50_ms"] > 0 and c["host_latency"]["p50_ms"] > 0
    assert m["metrics"]["latency_measured_on"]["device"] == "real-agent"
    assert m["metrics"]["latency_ms"] == cands[m["precision"]]["latency"]
    # NOTE: the decision follows the device's ratio, whichever way it falls on this host
    speedup = cands["fp32"]["latency"]["p50_ms"] / cands["int8-static"]["latency"]["p50_ms"]
    within_budget = "float speed" in verdicts["int8-static"]
    min_speedup = m["provenance"]["recipe"]["options"]["min_speedup"]
    expected = "int8-static" if within_budget and speedup >= min_speedup else "fp32"
    assert m["precision"] == expected, (speedup, verdicts)
    assert f"{speedup:.2f}× float speed on device real-agent" in verdicts["int8-static"]

"""The whole loop with real parts: compiled and signed artifacts, the fleet service, real device agents
(configured by `edgeml-agent init`) and a real Mosquitto. A staged rollout reaches every agent, the agents
serve predictions and report compressed telemetry with feedback accuracy, and an aborted rollout sends the
exposed agent back to the model it ran before."""

from __future__ import annotations

import os
import subprocess
import time

import numpy as np
import pytest

from edgeml.artifact import load_private_key
from edgeml.device_agent import Agent
from edgeml.fleet import Fleet, FleetService, RolloutPlan
from edgeml.transport.mqtt_transport import MqttTransport

pytestmark = pytest.mark.broker


def wait_until(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout:g} s")


def serving_version(agent):
    model = agent.serving  # a property: the model serving now, or None
    return model.manifest["version"] if model is not None else None


def test_fleet_and_real_agents(tmp_path, keypair, broker, releases):
    fleet = Fleet(tmp_path / "fleet.sqlite", tmp_path / "store", load_private_key(keypair[0]))
    service = FleetService(fleet, MqttTransport(broker.url, "fleet"), chunk_size=16 * 1024, tick_s=0.2)
    service.start()
    agents = []
    try:
        for i in range(3):
            config = tmp_path / f"cam-{i}.toml"
            text = subprocess.run(
                ["edgeml-agent", "init", "--device-id", f"cam-{i}", "--target", "cpu-ort", "--broker", broker.url,
                 "--pubkey", str(keypair[1]), "--state-dir", str(tmp_path / f"state-{i}")],
                capture_output=True, text=True, check=True, env=os.environ,
            ).stdout  # fmt: skip
            config.write_text(text)
            agents.append(Agent.from_config(config).start())
        wait_until(lambda: len(fleet.devices.select()) == 3, what="3 agents registered")

        good = fleet.artifacts.publish(releases["1.2.3"], time.time())
        fleet.artifacts.publish(releases["1.3.0"], time.time())
        plan = RolloutPlan.build("34%", "100%", "1s", "60s", ["install_success>=1.0"])
        r1 = fleet.rollouts.create("digits@1.2.3", "target=cpu-ort", plan, time.time())
        wait_until(lambda: fleet.rollouts.status(r1["id"])["state"] == "completed", 90, "rollout of 1.2.3 completed")
        assert [serving_version(a) for a in agents] == ["1.2.3"] * 3
        assert {d["current_version"] for d in fleet.devices.select()} == {"1.2.3"}

        data = np.load(os.path.join(os.path.dirname(__file__), "..", "examples", "digits", "eval.npz"))
        x, labels = data["input"], data["labels"]
        for a in agents:
            for i in range(20):
                y = a.predict({"input": x[i : i + 1]})
                assert y["logits"].shape == (1, 10)
                a.feedback(y.request_id, int(labels[i]))
            (batch,) = a.send_telemetry()
            assert batch.payload[:1] == b"x"  # zlib-compressed on the wire
        wait_until(lambda: fleet.db.query("SELECT COUNT(DISTINCT device_id) FROM telemetry")[0][0] == 3,
                   what="telemetry from every agent")  # fmt: skip
        calls, labelled, correct = fleet.db.query(
            "SELECT SUM(calls), SUM(labelled), SUM(correct) FROM telemetry WHERE artifact_sha=?", (good["sha256"],)
        )[0]
        assert (calls, labelled) == (60, 60) and correct >= 50  # the feedback inside the compressed batches

        slow = RolloutPlan.build("34%", "100%", "10m", "60s", [])  # a long bake: the operator aborts first
        r2 = fleet.rollouts.create("digits@1.3.0", "target=cpu-ort", slow, time.time())
        canary = next(a for a in agents if a.config.agent.device_id == r2["executions"][0]["device_id"])
        wait_until(lambda: serving_version(canary) == "1.3.0", 60, "canary on 1.3.0")
        fleet.rollouts.abort(r2["id"], "aborted by the operator", time.time())
        wait_until(lambda: serving_version(canary) == "1.2.3", 60, "canary back on 1.2.3")
        wait_until(lambda: fleet.rollouts.status(r2["id"])["executions"][0]["state"] == "rolled_back", 30,
                   "execution rolled back")  # fmt: skip
        assert [serving_version(a) for a in agents] == ["1.2.3"] * 3
    finally:
        for a in agents:
            a.stop()
        service.stop()

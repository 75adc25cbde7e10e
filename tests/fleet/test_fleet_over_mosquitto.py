"""The fleet service and simulated devices over a real Mosquitto: a staged rollout to the end, a regression
aborted and reverted (an offline device reverting on reconnect), the service killed and restarted, the
broker restarted mid-transfer, and per-device ACLs enforced by the broker itself."""

from __future__ import annotations

import subprocess
import time

import pytest

from edgeml.artifact import load_private_key, load_public_key
from edgeml.fleet import Fleet, FleetService, RolloutPlan
from edgeml.fleet.acl import mosquitto_acl
from edgeml.fleet.simulated_device import Fault, SimulatedDevice
from edgeml.protocol import desired_topic, telemetry_topic
from edgeml.transport.mqtt_transport import MqttTransport

pytestmark = pytest.mark.broker
CHUNK = 8 * 1024  # small chunks: many messages per artifact, like a large model on a real fleet


def start_service(tmp_path, keypair, url):
    fleet = Fleet(tmp_path / "fleet.sqlite", tmp_path / "store", load_private_key(keypair[0]))
    service = FleetService(fleet, MqttTransport(url, f"fleet-{time.monotonic_ns()}"), chunk_size=CHUNK, tick_s=0.2)
    service.start()
    return service


def start_devices(url, keypair, n, faults=None):
    devices = []
    for i in range(n):
        device_id = f"cam-{i:02d}"
        d = SimulatedDevice(device_id, "cpu-ort", None, load_public_key(keypair[1]), faults=faults, seed=i)
        d.transport = MqttTransport(url, device_id, will=d.will())
        d.start()
        devices.append(d)
    return devices


def wait_for(service, rollout_id, devices, timeout=60.0, telemetry=False):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in devices:
            if d.transport.connected:
                d.poll(quiet_s=1.0)
                if telemetry and d.current:
                    d.emit_telemetry(calls=20)
        status = service.fleet.rollouts.status(rollout_id)
        if status["state"] in ("completed", "aborted") and not any(
            e["state"] in ("in_progress", "reverting") for e in status["executions"]
        ):
            return status
        time.sleep(0.3)
    raise AssertionError(f"rollout did not settle: {service.fleet.rollouts.status(rollout_id)}")


def wait_registered(service, n):
    deadline = time.monotonic() + 10
    while len(service.fleet.devices.select()) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(service.fleet.devices.select()) == n


def plan(gates, bake="1s"):
    return RolloutPlan.build("20%", "60%,100%", bake, "30s", gates)


def test_rollout_to_done_then_regression_reverted_with_an_offline_device(tmp_path, keypair, broker, releases):
    service = start_service(tmp_path, keypair, broker.url)
    devices = start_devices(broker.url, keypair, 5, faults={"1.3.0": Fault(latency_ms=50.0)})
    wait_registered(service, 5)
    good = service.fleet.artifacts.publish(releases["1.2.3"], time.time())
    r1 = service.fleet.rollouts.create("digits@1.2.3", "all", plan(["install_success>=1.0"]), time.time())
    assert wait_for(service, r1["id"], devices)["state"] == "completed"
    assert all(d.current.sha256 == good["sha256"] for d in devices)
    for d in devices:
        d.emit_telemetry(calls=200)

    service.fleet.artifacts.publish(releases["1.3.0"], time.time())
    r2 = service.fleet.rollouts.create("digits@1.3.0", "all", plan(["p95_latency<=1.2*baseline"]), time.time())
    canary = next(d for d in devices if d.device_id == r2["executions"][0]["device_id"])
    wait_until(lambda: canary.current and canary.current.version == "1.3.0")
    canary.emit_telemetry(calls=200)  # the regression reaches the fleet …
    wait_until(lambda: service.fleet.db.query("SELECT 1 FROM telemetry WHERE device_id=? AND artifact_sha=?",
                                              (canary.device_id, r2["artifact_sha"])))  # fmt: skip
    canary.transport.close()  # … and the canary drops off the network before the fleet reacts
    status = _abort_by_gate(service, r2["id"], [d for d in devices if d is not canary])
    assert "p95_latency" in status["reason"]
    canary.transport = MqttTransport(broker.url, canary.device_id, will=canary.will())
    canary.start()  # back online: the retained desired state sends it back to 1.2.3
    final = wait_for(service, r2["id"], devices)
    assert final["state"] == "aborted"
    assert [e["state"] for e in final["executions"] if e["device_id"] == canary.device_id] == ["rolled_back"]
    assert all(d.current.sha256 == good["sha256"] for d in devices)
    assert sum(d.corrupt_installs for d in devices) == 0
    stop_all(service, devices)


def _abort_by_gate(service, rollout_id, others):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for d in others:
            d.emit_telemetry(calls=20)
        status = service.fleet.rollouts.status(rollout_id)
        if status["state"] == "aborted":
            return status
        time.sleep(0.3)
    raise AssertionError(service.fleet.rollouts.status(rollout_id))


def test_service_killed_mid_rollout_and_broker_restarted_mid_transfer(tmp_path, keypair, broker, releases):
    service = start_service(tmp_path, keypair, broker.url)
    devices = start_devices(broker.url, keypair, 4)
    wait_registered(service, 4)
    service.fleet.artifacts.publish(releases["1.2.3"], time.time())
    r = service.fleet.rollouts.create("digits@1.2.3", "all", plan([], bake="2s"), time.time())
    wait_until(lambda: service.fleet.rollouts.status(r["id"])["wave"] >= 0)
    service.stop()  # killed between waves: its state is in the database
    broker.stop()  # and the broker goes away with downloads in flight
    time.sleep(0.5)
    broker.start()
    service = start_service(tmp_path, keypair, broker.url)
    status = wait_for(service, r["id"], devices, timeout=90)
    assert status["state"] == "completed"
    assert all(e["state"] == "succeeded" for e in status["executions"]), status["executions"]
    assert sum(d.corrupt_installs for d in devices) == 0
    sequences = {d.device_id: d.guard_state["last_sequence"] for d in devices}
    assert set(sequences.values()) == {1}, "a restart must not issue a desired state twice"
    stop_all(service, devices)


def test_broker_acl_confines_each_device_to_its_own_topics(tmp_path, keypair, broker):
    passwords = tmp_path / "passwords"
    users = {"edgeml-fleet": "f-pass", "cam-a": "a-pass", "cam-b": "b-pass"}
    for user, password in users.items():
        create = [] if passwords.exists() else ["-c"]
        subprocess.run(["mosquitto_passwd", *create, "-b", str(passwords), user, password], check=True)  # fmt: skip
    (tmp_path / "acl").write_text(mosquitto_acl(["cam-a", "cam-b"]))
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
                           + f"password_file {passwords}\nacl_file {tmp_path / 'acl'}\n")  # fmt: skip
    broker.stop()
    broker.start()
    url = broker.url.replace("mqtt://", "mqtt://{}:{}@")
    fleet_side, got = MqttTransport(url.format("edgeml-fleet", "f-pass"), "fleet"), []
    fleet_side.subscribe("edgeml/v1/devices/+/telemetry", lambda t, p: got.append(t))
    fleet_side.connect()
    a = MqttTransport(url.format("cam-a", "a-pass"), "cam-a")
    seen_by_a = []
    a.subscribe(desired_topic("cam-b"), lambda t, p: seen_by_a.append(t))
    a.subscribe(desired_topic("cam-a"), lambda t, p: seen_by_a.append(t))
    a.connect()
    fleet_side.publish(desired_topic("cam-b"), b"for b only", retain=True)
    fleet_side.publish(desired_topic("cam-a"), b"for a", retain=True)
    a.publish(telemetry_topic("cam-b"), b"a pretending to be b")
    a.publish(telemetry_topic("cam-a"), b"a's own")
    time.sleep(1.0)
    assert got == [telemetry_topic("cam-a")]
    assert seen_by_a == [desired_topic("cam-a")]
    for t in (fleet_side, a):
        t.close()


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def stop_all(service, devices):
    for d in devices:
        d.transport.close()
    service.stop()

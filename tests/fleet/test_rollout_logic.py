"""Rollout logic end to end on the in-memory transport with simulated devices and a controlled clock:
canary → waves → done, a latency regression auto-aborted and reverted, bad input refused."""

from __future__ import annotations

import pytest

from edgeml.artifact import load_public_key
from edgeml.fleet import FleetError, RolloutPlan
from edgeml.fleet.simulated_device import SimulatedDevice
from edgeml.protocol import ModelRef
from edgeml.transport.memory_transport import MemoryTransport


def plan(gates, bake="30s"):
    return RolloutPlan.build("10%", "50%,100%", bake, "10m", gates)


def test_canary_then_waves_then_done(world, releases, run):
    service, devices, clock = world
    art = service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    created = service.fleet.rollouts.create("digits@1.2.3", "target=cpu-ort", plan(["install_success>=1.0"]), clock.now)
    assert [w["size"] for w in created["waves"]] == [1, 4, 5]
    status = run(service, devices, clock, created["id"])
    assert status["state"] == "completed", (status["reason"], status["waves"])
    assert all(e["state"] == "succeeded" for e in status["executions"])
    assert all(d.current.sha256 == art["sha256"] for d in devices)
    assert sum(d.corrupt_installs for d in devices) == 0


def test_latency_regression_aborts_and_reverts_every_exposed_device(world, releases, run):
    service, devices, clock = world
    first = service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    service.fleet.artifacts.publish(releases["1.3.0"], clock.now)
    r1 = service.fleet.rollouts.create("digits@1.2.3", "all", plan(["install_success>=1.0"]), clock.now)
    run(service, devices, clock, r1["id"])
    for d in devices:
        d.emit_telemetry(calls=200)  # baseline latency on 1.2.3
    gates = ["install_success>=0.9", "p95_latency<=1.2*baseline", "error_rate<=0.01"]
    r2 = service.fleet.rollouts.create("digits@1.3.0", "all", plan(gates), clock.now)
    status = run(service, devices, clock, r2["id"], telemetry=True)
    assert status["state"] == "aborted" and "p95_latency<=1.2*baseline" in status["reason"]
    exposed = [e for e in status["executions"] if e["wave"] == 0]
    assert exposed and all(e["state"] == "rolled_back" for e in exposed)
    assert all(e["state"] == "cancelled" for e in status["executions"] if e["wave"] > 0)
    assert all(d.current.sha256 == first["sha256"] for d in devices)


def test_incompatible_devices_are_never_exposed(world, releases, keypair, run):
    service, devices, clock = world
    npu = SimulatedDevice("npu-01", "ethos-u55-128", MemoryTransport(service.transport.broker, "npu-01"),
                          load_public_key(keypair[1]))  # fmt: skip
    npu.start()
    service.pump()
    service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    with pytest.raises(
        FleetError, match=r"matches 1 device\(s\), 0 of them can run digits@1.2.3 \(built for cpu-ort\)"
    ):
        service.fleet.rollouts.create("digits@1.2.3", "target=ethos-u55-128", plan([]), clock.now)
    created = service.fleet.rollouts.create("digits@1.2.3", "all", plan([]), clock.now)
    assert created["skipped_incompatible"] == 1
    assert "npu-01" not in {e["device_id"] for e in created["executions"]}
    run(service, [*devices, npu], clock, created["id"])
    assert npu.current is None


def test_bad_rollouts_are_refused(world, releases):
    service, _devices, clock = world
    service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    with pytest.raises(FleetError, match="matches 0 device"):
        service.fleet.rollouts.create("digits@1.2.3", "tag:site=nowhere", plan([]), clock.now)
    with pytest.raises(FleetError, match="does not parse"):
        RolloutPlan.build("2%", "50%", "1m", "1m", ["p95_latency<=>1.2"])
    with pytest.raises(FleetError, match="no published artifact"):
        service.fleet.rollouts.create("digits@9.9.9", "all", plan([]), clock.now)


def test_garbage_and_impostors_are_counted_not_fatal(world, releases):
    service, devices, _clock = world
    t = MemoryTransport(service.transport.broker, "evil")
    t.connect()
    t.publish("edgeml/v1/devices/cam-01/telemetry", b"\x00garbage")
    t.publish("edgeml/v1/devices/cam-01/hello", devices[2].transport.broker.published[0][1])  # cam-00's hello
    t.publish("edgeml/v1/devices/ghost/status", b"{}")
    service.pump()
    rejected = service.fleet.events.rejected()
    assert rejected == {"malformed": 1, "topic_mismatch": 1, "wrong_schema": 1}


def test_without_gates_a_wave_where_installs_fail_still_stops_the_rollout(world, releases, run):
    service, devices, clock = world
    newer = service.fleet.artifacts.publish(releases["1.3.0"], clock.now)
    service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    for d in devices:  # 1.3.0 was installed before the fleet managed them: it signs no floor, the devices keep theirs
        d.current = ModelRef("digits", "1.3.0", newer["release"], newer["sha256"])
        d.announce()
    service.pump()
    r2 = service.fleet.rollouts.create("digits@1.2.3", "all", plan([], bake="0s"), clock.now)
    assert r2["plan"]["gates"] == ["install_success>=0.5"]  # the default gate, stated in the plan
    status = run(service, devices, clock, r2["id"])
    assert status["state"] == "aborted" and "install_success>=0.5" in status["reason"], status["reason"]
    assert all(e["state"] == "cancelled" for e in status["executions"] if e["wave"] > 0)
    assert {d.current.version for d in devices} == {"1.3.0"}
    assert all(code == "rollback_refused" for d in devices for code in d.rejected)


def test_a_100_percent_canary_is_the_whole_rollout():
    assert RolloutPlan.build("100%", "25%,100%", "0s", "1m", []).waves == (1.0,)  # the default waves drop out
    with pytest.raises(FleetError, match="must grow"):
        RolloutPlan.build("100%", "50%", "0s", "1m", [])  # waves the operator chose are not second-guessed

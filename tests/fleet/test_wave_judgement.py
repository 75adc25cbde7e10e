"""A wave is judged on the devices that report: a device that went offline does not hold back an abort the
others already call for, a silent device is a failed install once its deadline passed, and the bake runs
from the moment the wave settled (in-memory broker, simulated devices, a controlled clock)."""

from __future__ import annotations

from edgeml.fleet import RolloutPlan
from edgeml.protocol import desired_topic

DEADLINE_S = 600.0


def baseline(service, devices, clock, releases, run):
    """Every device on 1.2.3 (a completed rollout), with latency telemetry to compare against."""
    service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    service.fleet.artifacts.publish(releases["1.3.0"], clock.now)
    first = service.fleet.rollouts.create("digits@1.2.3", "all", RolloutPlan.build("100%", "", "0s", "10m", []),
                                          clock.now)  # fmt: skip
    assert run(service, devices, clock, first["id"])["state"] == "completed"
    for d in devices:
        d.emit_telemetry(calls=200)
    service.pump()


def step(service, devices, clock, seconds=1.0, telemetry=True):
    clock.now += seconds
    service.tick()
    while service.pump():
        pass
    for d in devices:
        if telemetry and d.current and d.transport.connected:
            d.emit_telemetry(calls=50)
    service.pump()
    return service.fleet.rollouts.status_with_gates(service._rid)


def start(service, clock, canary, gates, bake="30s"):
    plan = RolloutPlan.build(canary, "100%", bake, f"{DEADLINE_S:g}s", gates)
    r = service.fleet.rollouts.create("digits@1.3.0", "all", plan, clock.now)
    service._rid = r["id"]
    return r


def in_wave(r, devices, wave=0):
    ids = {e["device_id"] for e in r["executions"] if e["wave"] == wave}
    return [d for d in devices if d.device_id in ids]


def test_an_offline_exposed_device_does_not_hold_back_the_abort(world, releases, run):
    service, devices, clock = world
    baseline(service, devices, clock, releases, run)
    r = start(service, clock, "50%", ["p95_latency<=1.2*baseline"])
    canary = in_wave(r, devices)
    canary[0].transport.vanish()  # exposed, never installs, never reports: offline for good
    began = clock.now
    for _ in range(60):
        status = step(service, devices, clock)
        if status["state"] == "aborted":
            break
    assert status["state"] == "aborted", status
    assert clock.now - began < 10  # seconds of the fleet's clock, against a 600 s deadline
    assert "p95_latency<=1.2*baseline" in status["reason"] and "1 still waiting" in status["reason"]
    states = {e["device_id"]: e["state"] for e in status["executions"]}
    assert states[canary[0].device_id] == "reverting"  # sent back too: it reverts when it comes back
    assert {states[d.device_id] for d in canary[1:]} == {"rolled_back"}


def test_too_few_reporting_devices_do_not_abort_before_the_wave_settled(world, releases, run):
    service, devices, clock = world
    baseline(service, devices, clock, releases, run)
    plan = RolloutPlan.build("50%", "100%", "30s", "600s", ["p95_latency<=1.2*baseline"], min_sample=5)
    r = service.fleet.rollouts.create("digits@1.3.0", "all", plan, clock.now)
    service._rid = r["id"]
    in_wave(r, devices)[0].transport.vanish()
    for _ in range(20):
        status = step(service, devices, clock)
    assert status["state"] == "running", status["reason"]  # 4 report, 5 are needed before the wave settled
    clock.now += DEADLINE_S  # the silent device times out: the wave settled, judged on those that report
    for _ in range(3):
        status = step(service, devices, clock)
    assert status["state"] == "aborted" and "p95_latency" in status["reason"], status["reason"]


def test_a_device_silent_past_its_deadline_is_a_failed_install_of_its_wave(world, releases, run):
    service, devices, clock = world
    baseline(service, devices, clock, releases, run)
    r = start(service, clock, "50%", ["install_success>=1.0"])
    in_wave(r, devices)[0].transport.vanish()
    for _ in range(30):
        status = step(service, devices, clock, telemetry=False)
    assert status["state"] == "running"  # 4 of 5 installed; the fifth may still make it
    clock.now += DEADLINE_S
    status = step(service, devices, clock, telemetry=False)
    assert status["state"] == "aborted", status
    assert "install_success>=1.0 (measured 0.8" in status["reason"], status["reason"]
    timed_out = [e for e in status["executions"] if e["device_id"] == in_wave(r, devices)[0].device_id]
    assert [e["state"] for e in timed_out] == ["reverting"]


def test_install_success_that_cannot_be_reached_any_more_aborts_before_the_wave_settled(world, releases, run):
    service, devices, clock = world
    service.fleet.artifacts.publish(releases["1.3.0"], clock.now)
    plan = RolloutPlan.build("100%", "", "30s", "600s", ["install_success>=0.9"])
    r = service.fleet.rollouts.create("digits@1.3.0", "all", plan, clock.now)
    service._rid = r["id"]
    devices[9].transport.vanish()
    refuse = {d.device_id for d in devices[:3]}
    for d in devices[:3]:
        d.transport.subscribe(desired_topic(d.device_id), _refusing(d))
    for _ in range(10):
        status = step(service, devices, clock, telemetry=False)
        if status["state"] == "aborted":
            break
    assert status["state"] == "aborted", status
    assert "still waiting" in status["reason"]
    refused = {e["device_id"] for e in status["executions"] if "wrong_target" in e["reason"]}
    assert refused == refuse  # (the others ran nothing before: no earlier model to return to)


def _refusing(device):
    """The device reports every desired state refused (as an agent whose admission check fails)."""

    def on_desired(topic, payload):
        verdict = device.guard.check(payload, device.guard_state, None)
        if verdict.accepted:
            device.guard_state = verdict.state
            a = verdict.desired.artifact
            device._event("refused", "verifying", False, "[wrong_target] not for this device", a.sha256, a.release,
                          verdict.desired.rollout_id)  # fmt: skip

    return on_desired


def test_the_bake_runs_from_when_the_wave_settled_not_from_when_it_started(world, releases, run):
    service, devices, clock = world
    baseline(service, devices, clock, releases, run)
    r = start(service, clock, "10%", [], bake="30s")
    (canary,) = in_wave(r, devices)
    canary.transport.vanish()  # a slow download: the canary installs 100 s after its wave started
    status = step(service, devices, clock)
    assert status["wave"] == 0
    clock.now += 100
    canary.transport.connect()  # back: the retained desired state installs
    status = step(service, devices, clock)
    settled = service.fleet.db.query("SELECT finished_at FROM executions WHERE rollout_id=? AND device_id=?",
                                     (r["id"], canary.device_id))[0][0]  # fmt: skip
    assert status["wave"] == 0 and settled is not None
    while status["wave"] == 0:
        status = step(service, devices, clock)
    assert status["wave_started_at"] >= settled + 30
    assert status["wave_started_at"] <= settled + 32

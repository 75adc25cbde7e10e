"""A way back: the anti-rollback floor is what the fleet signs (`min_release`, the last release it declared
good), so after 1.3.0 is aborted and reverted to 1.2.3 the hotfix 1.2.4 reaches every device — also one that
was offline through the revert; going below the floor is the operator's signed, audited decision
(`--allow-rollback`); replays stay refused (in-memory broker, simulated devices, a controlled clock)."""

from __future__ import annotations

import json

import pytest

from edgeml.fleet import RolloutPlan
from edgeml.fleet.database import FleetConflictError
from edgeml.protocol import SignedDesiredState, decode, desired_topic


def plan(gates=(), canary="10%", allow_rollback=False):
    return RolloutPlan.build(canary, "50%,100%", "0s", "10m", list(gates), allow_rollback=allow_rollback)


def signed(broker, device_id):
    """The desired state retained for the device, as the fleet signed it."""
    return decode(SignedDesiredState.KIND, broker.retained[desired_topic(device_id)]).state


def test_after_an_abort_a_lower_hotfix_reaches_every_device_and_replays_stay_refused(world, releases, hotfix, run):
    service, devices, clock = world
    broker = service.transport.broker
    good = service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    service.fleet.artifacts.publish(releases["1.3.0"], clock.now)
    fix = service.fleet.artifacts.publish(hotfix, clock.now)
    assert run(service, devices, clock, service.fleet.rollouts.create("digits@1.2.3", "all", plan(), clock.now)["id"])
    for d in devices:
        d.emit_telemetry(calls=200)
    bad = service.fleet.rollouts.create("digits@1.3.0", "all", plan(["p95_latency<=1.2*baseline"], "40%"), clock.now)
    canary = [d for d in devices if d.device_id in {e["device_id"] for e in bad["executions"] if e["wave"] == 0}]
    clock.now += 5
    service.tick()
    service.pump()  # the canary installs 1.3.0 …
    assert all(d.current.version == "1.3.0" for d in canary)
    replay = broker.retained[desired_topic(canary[0].device_id)]
    assert signed(broker, canary[0].device_id).min_release == good["release"]  # the floor it was sent with
    canary[0].transport.vanish()  # … and one of them goes offline before the revert reaches it
    status = until_only_the_offline_one_moves(service, devices, clock, bad["id"])
    assert status["state"] == "aborted" and status["moving"] == 1
    assert signed(broker, canary[1].device_id).allow_rollback  # the revert: a signed rollback

    # the hotfix takes the offline device over from the revert it never received
    fixed = service.fleet.rollouts.create("digits@1.2.4", "all", plan(), clock.now)  # 1.2.4 < 1.3.0 committed
    while state_in(service, fixed["id"], canary[0].device_id) == "pending":
        clock.now += 5
        service.tick()
        service.pump()
    canary[0].transport.connect()  # back: it missed the revert; the retained desired state is now the hotfix
    status = run(service, devices, clock, fixed["id"])
    assert status["state"] == "completed", status["reason"]
    old = service.fleet.rollouts.status(bad["id"])
    assert [(e["state"], e["reason"]) for e in old["executions"] if e["device_id"] == canary[0].device_id] == [
        ("superseded", f"superseded by rollout {fixed['id']}")
    ]
    assert old["moving"] == 0
    assert {d.device_id: d.current.version for d in devices} == {d.device_id: "1.2.4" for d in devices}
    assert not [code for d in devices for code in d.rejected], "no device refused the hotfix"
    # the floor signed with the hotfix: 1.2.3 (reverted to), or 1.2.4 where it was signed again after completing
    assert signed(broker, devices[0].device_id).min_release in (good["release"], fix["release"])

    canary[0].on_desired(desired_topic(canary[0].device_id), replay)  # a replay of the 1.3.0 desired state
    assert canary[0].rejected == ["stale"] and canary[0].current.sha256 == fix["sha256"]


def state_in(service, rollout_id, device_id):
    return next(
        e["state"] for e in service.fleet.rollouts.status(rollout_id)["executions"] if e["device_id"] == device_id
    )


def until_only_the_offline_one_moves(service, devices, clock, rollout_id):
    for _ in range(100):
        clock.now += 5
        service.tick()
        while service.pump():
            pass
        for d in devices:
            if d.current and d.transport.connected:
                d.emit_telemetry(calls=50)
        service.pump()
        status = service.fleet.rollouts.status(rollout_id)
        if status["state"] == "aborted" and status["moving"] <= 1:
            return status
    raise AssertionError(status)


def test_going_below_the_floor_is_refused_unless_the_operator_allows_it_signed_and_audited(
    world, releases, hotfix, run
):
    service, devices, clock = world
    broker = service.transport.broker
    good = service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    service.fleet.artifacts.publish(hotfix, clock.now)
    assert run(service, devices, clock, service.fleet.rollouts.create("digits@1.2.4", "all", plan(), clock.now)["id"])
    with pytest.raises(FleetConflictError, match=r"below the anti-rollback floor of 10 of the 10") as refused:
        service.fleet.rollouts.create("digits@1.2.3", "all", plan(), clock.now)
    assert "--allow-rollback" in refused.value.hint and "digits@1.2.4, installed by rollout" in refused.value.message

    back = service.fleet.rollouts.create("digits@1.2.3", "all", plan(allow_rollback=True), clock.now, actor="cli:ops")
    created = back["events"][0]
    assert (created["kind"], created["actor"]) == ("created", "cli:ops")
    assert "allow_rollback: 10 device(s) taken below their anti-rollback floor [1002004]" in created["detail"]
    status = run(service, devices, clock, back["id"])
    assert status["state"] == "completed" and {d.current.sha256 for d in devices} == {good["sha256"]}
    desired = signed(broker, devices[0].device_id)
    assert desired.allow_rollback and desired.min_release == good["release"]  # the operator's lowered floor, signed
    assert [e["kind"] for e in status["events"]][-1] == "complete"


def test_aborting_a_completed_rollout_suggests_a_command_the_devices_accept(world, releases, hotfix, run, capsys):
    service, devices, clock = world
    service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    service.fleet.artifacts.publish(hotfix, clock.now)
    assert run(service, devices, clock, service.fleet.rollouts.create("digits@1.2.3", "all", plan(), clock.now)["id"])
    done = service.fleet.rollouts.create("digits@1.2.4", "all", plan(), clock.now)
    assert run(service, devices, clock, done["id"])["state"] == "completed"
    with pytest.raises(FleetConflictError) as refused:
        service.fleet.rollouts.abort(done["id"], "too late", clock.now)
    command = "edgeml fleet rollout create digits@1.2.3 --to 'all' --allow-rollback"
    assert command in refused.value.hint
    back = service.fleet.rollouts.create("digits@1.2.3", "all", plan(allow_rollback=True), clock.now)
    assert run(service, devices, clock, back["id"])["state"] == "completed"
    assert {d.current.version for d in devices} == {"1.2.3"}
    assert json.dumps(back["plan"]).count('"allow_rollback": true') == 1

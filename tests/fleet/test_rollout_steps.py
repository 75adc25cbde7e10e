"""Rollout steps decided on a stale read move nothing: the operator (another process) or a second fleet instance
changes the rollout between a tick's read and its step. Deadlines time executions out, also while their rollout
is paused, and every tick returns what moved, which the service logs."""

from __future__ import annotations

import logging

import pytest

from edgeml.artifact import load_private_key
from edgeml.fleet import Fleet, RolloutPlan
from edgeml.fleet.lifecycles import Moved
from edgeml.protocol import Hello

NOW = 1_800_000_000.0


@pytest.fixture
def second(fleet, keypair):
    """Another Fleet on the same database and store: the operator's CLI, or a second service instance."""
    other = Fleet(fleet.db.url, fleet.artifacts.root, load_private_key(keypair[0]))
    yield other
    other.db.close()


def start(fleet, releases, canary="10%", waves="50%,100%", devices=10) -> str:
    for i in range(devices):
        fleet.devices.on_hello(Hello(f"cam-{i:02d}", "cpu-ort", "0.1.0", 1 << 30, {"onnxruntime": "1.32.0"}), NOW)
    fleet.artifacts.publish(releases["1.2.3"], NOW)
    plan = RolloutPlan.build(canary, waves, "0s", "10m", [])
    return fleet.rollouts.create("digits@1.2.3", "all", plan, NOW)["id"]


def after_reading_rollouts(fleet, monkeypatch, meanwhile) -> None:
    """Run `meanwhile()` right after the fleet's next tick has read the running rollouts, before it acts."""
    query = fleet.db.query

    def read_then_meanwhile(sql, params=()):
        rows = query(sql, params)
        if sql.startswith("SELECT * FROM rollouts"):
            monkeypatch.setattr(fleet.db, "query", query)
            meanwhile()
        return rows

    monkeypatch.setattr(fleet.db, "query", read_then_meanwhile)


def test_a_pause_after_the_tick_read_the_rollout_exposes_nothing(fleet, second, releases, monkeypatch):
    rid = start(fleet, releases)
    after_reading_rollouts(fleet, monkeypatch, lambda: second.rollouts.pause(rid, NOW))
    assert fleet.rollouts.tick(NOW + 1) == []
    status = fleet.rollouts.status(rid)
    assert (status["state"], status["wave"]) == ("paused", -1)
    assert {e["state"] for e in status["executions"]} == {"pending"} and fleet.desired.all() == []


def test_two_instances_on_one_read_expose_the_canary_once(fleet, second, releases, monkeypatch):
    rid = start(fleet, releases)
    first_moves: list[Moved] = []
    after_reading_rollouts(fleet, monkeypatch, lambda: first_moves.extend(second.rollouts.tick(NOW + 1)))
    assert fleet.rollouts.tick(NOW + 2) == []  # its read said wave -1; the other instance is at wave 0
    canary = [e["device_id"] for e in fleet.rollouts.status(rid)["executions"] if e["wave"] == 0]
    expected = [("rollout", "next_wave")] + [("execution", "expose")] * len(canary)
    assert [(m.lifecycle, m.event) for m in first_moves] == expected
    assert [(d.device_id, d.sequence) for d in fleet.desired.all()] == [(d, 1) for d in canary]
    assert fleet.rollouts.status(rid)["wave_started_at"] == NOW + 1  # the bake clock was not restarted


def test_an_operator_abort_after_the_gates_passed_is_not_overwritten_by_completed(fleet, second, releases, monkeypatch):
    rid = start(fleet, releases, canary="100%", waves="", devices=2)
    fleet.rollouts.tick(NOW + 1)
    sha = fleet.rollouts.status(rid)["artifact_sha"]
    for device_id in ("cam-00", "cam-01"):
        assert [m.state for m in fleet.rollouts.on_device_model(device_id, sha, NOW + 2)] == ["succeeded"]
    judge = fleet.rollouts.health.judge

    def judge_then_abort(r, plan, final=True):
        verdict = judge(r, plan, final)
        assert final and not verdict.failed and not verdict.undecided
        second.rollouts.abort(rid, "aborted by the operator", NOW + 3)
        return verdict

    monkeypatch.setattr(fleet.rollouts.health, "judge", judge_then_abort)
    assert fleet.rollouts.tick(NOW + 3) == []  # "complete" was decided on a running rollout: stale now
    status = fleet.rollouts.status(rid)
    assert (status["state"], status["reason"]) == ("aborted", "aborted by the operator")


def test_a_deadline_times_an_execution_out_even_while_its_rollout_is_paused(fleet, releases):
    rid = start(fleet, releases)
    exposed = fleet.rollouts.tick(NOW + 1)
    canary = [m.key for m in exposed if m.lifecycle == "execution"]
    fleet.rollouts.pause(rid, NOW + 2)
    assert fleet.rollouts.tick(NOW + 1 + 600) == []  # the deadline (10m) has not passed yet
    late = fleet.rollouts.tick(NOW + 1 + 601)
    assert late == [Moved("execution", key, "deadline_passed", "timed_out") for key in canary]
    rows = [e for e in fleet.rollouts.status(rid)["executions"] if e["wave"] == 0]
    assert [(e["state"], e["reason"]) for e in rows] == [("timed_out", "no result before the deadline")] * len(rows)
    assert fleet.rollouts.status(rid)["state"] == "paused"


def test_the_service_logs_each_transition_a_tick_made(world, releases, caplog):
    service, _devices, clock = world
    service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    plan = RolloutPlan.build("10%", "50%,100%", "0s", "10m", [])
    rid = service.fleet.rollouts.create("digits@1.2.3", "all", plan, clock.now)["id"]
    canary = next(e["device_id"] for e in service.fleet.rollouts.status(rid)["executions"] if e["wave"] == 0)
    with caplog.at_level(logging.INFO, logger="edgeml.fleet.fleet_service"):
        service.tick()
        while service.pump():  # the canary device fetches, installs and reports its model
            pass
    assert caplog.messages[:2] == [
        f"rollout {rid}: next_wave → running",
        f"execution {rid}/{canary}: expose → in_progress",
    ]
    assert f"execution {rid}/{canary}: installed → succeeded" in caplog.messages

"""A/B experiments on hash-assigned cohorts, judged by stated tests with a minimum sample size."""

from __future__ import annotations

import itertools
import sqlite3
import uuid

import pytest

from edgeml.fleet import FleetError, RolloutPlan
from edgeml.fleet import experiments as experiments_module
from edgeml.fleet.database import SCHEMA_VERSION, Database, FleetConflictError
from edgeml.fleet.experiments import arm_of, two_proportions
from edgeml.fleet.simulated_device import Fault


@pytest.fixture
def balanced_ids(monkeypatch):
    """Experiment ids whose 50 % split puts 5 of the world's 10 devices in each arm: with random ids, an
    arm got fewer than 3 devices about one run in ten, too few for a verdict."""
    devices = [f"cam-{i:02d}" for i in range(10)]
    candidates = (uuid.UUID(int=k << 88) for k in itertools.count(1))
    ids = (u for u in candidates if [arm_of("e-" + u.hex[:10], d, 50) for d in devices].count("B") == 5)
    monkeypatch.setattr(experiments_module.uuid, "uuid4", lambda: next(ids))


def settle(service, devices, clock, rounds=20, telemetry=True):
    for _ in range(rounds):
        clock.now += 5
        service.tick()
        while service.pump():
            pass
        if telemetry:
            for d in devices:
                if d.current:
                    d.emit_telemetry(calls=100)
        service.pump()


def test_slower_arm_is_found_worse_on_latency(world, releases, balanced_ids):
    service, devices, clock = world
    service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    service.fleet.artifacts.publish(releases["1.3.0"], clock.now)
    service.fleet.experiments.min_devices = 3
    exp = service.fleet.experiments.create("digits@1.2.3", "digits@1.3.0", 50, "all", ["p95_latency", "error_rate"],
                                           clock.now)  # fmt: skip
    assert exp["arms"]["A"]["devices"] + exp["arms"]["B"]["devices"] == 10
    early = service.fleet.experiments.report(exp["id"])
    assert early["metrics"]["p95_latency"]["verdict"].startswith("insufficient data")
    settle(service, devices, clock)
    report = service.fleet.experiments.report(exp["id"])
    latency = report["metrics"]["p95_latency"]
    assert latency["verdict"].startswith("B is worse"), latency
    assert latency["difference"] == pytest.approx(40, abs=10) and latency["ci95"][0] > 0
    assert report["metrics"]["error_rate"]["verdict"].startswith("no significant difference")
    by_arm = {d.device_id: d.current.version for d in devices}
    assert all(by_arm[i] == ("1.3.0" if arm_of(exp["id"], i, 50) == "B" else "1.2.3") for i in by_arm)


def test_cohorts_are_stable_and_near_the_split():
    ids = [f"dev-{i}" for i in range(2000)]
    first = [arm_of("e-1", i, 30) for i in ids]
    assert first == [arm_of("e-1", i, 30) for i in ids]
    assert 0.26 < first.count("B") / len(ids) < 0.34


def test_two_proportions_against_a_known_case():
    r = two_proportions(50, 10_000, 80, 10_000, 1000)  # 0.5 % vs 0.8 %
    assert r["p_value"] < 0.01 and r["verdict"].startswith("B is worse")
    assert r["ci95"][0] < r["difference"] < r["ci95"][1]


def test_experiment_input_is_checked(world, releases):
    service, _, clock = world
    service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    with pytest.raises(FleetError, match="unknown experiment metric"):
        service.fleet.experiments.create("digits@1.2.3", "digits@1.2.3", 50, "all", ["vibes"], clock.now)
    with pytest.raises(FleetError, match="between 0 and 100"):
        service.fleet.experiments.create("digits@1.2.3", "digits@1.2.3", 100, "all", ["error_rate"], clock.now)


def test_accuracy_from_device_feedback_decides_an_experiment(world, releases, balanced_ids):
    service, devices, clock = world
    service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    service.fleet.artifacts.publish(releases["1.3.0"], clock.now)
    service.fleet.experiments.min_devices = 3
    exp = service.fleet.experiments.create("digits@1.2.3", "digits@1.3.0", 50, "all", ["accuracy"], clock.now)
    for d in devices:
        d.faults = {"1.2.3": Fault(accuracy=0.97), "1.3.0": Fault(accuracy=0.90)}
    settle(service, devices, clock)
    accuracy = service.fleet.experiments.report(exp["id"])["metrics"]["accuracy"]
    assert accuracy["verdict"].startswith("B is worse"), accuracy
    assert accuracy["a"] == pytest.approx(0.97, abs=0.02) and accuracy["b"] == pytest.approx(0.90, abs=0.02)


def test_a_device_follows_one_plan_at_a_time(world, releases, run):
    service, devices, clock = world
    fleet = service.fleet
    fleet.artifacts.publish(releases["1.2.3"], clock.now)
    fleet.artifacts.publish(releases["1.3.0"], clock.now)
    fleet.experiments.min_devices = 3
    exp = fleet.experiments.create("digits@1.2.3", "digits@1.3.0", 50, "all", ["p95_latency"], clock.now)
    plan = RolloutPlan.build("20%", "100%", "0s", "30m", [])
    with pytest.raises(
        FleetConflictError, match=rf"10 device\(s\) already follow another plan \(10 in experiment {exp['id']}"
    ):
        fleet.rollouts.create("digits@1.3.0", "all", plan, clock.now)
    with pytest.raises(FleetConflictError, match="already follow another plan"):
        fleet.experiments.create("digits@1.2.3", "digits@1.3.0", 50, "id=cam-0*", ["p95_latency"], clock.now)

    ended = fleet.experiments.stop(exp["id"], "A", clock.now)
    assert ended["state"] == "ended" and ended["outcome"] == "kept A"
    settle(service, devices, clock, telemetry=False)
    assert {d.current.version for d in devices} == {"1.2.3"}  # --keep A moved the B arm back
    with pytest.raises(FleetConflictError, match="already ended"):
        fleet.experiments.stop(exp["id"], None, clock.now)
    assert [e["id"] for e in fleet.experiments.list()] == [exp["id"]]

    r = fleet.rollouts.create("digits@1.3.0", "all", plan, clock.now)  # free again: the rollout may start
    with pytest.raises(FleetConflictError, match=rf"in rollout {r['id']}"):
        fleet.experiments.create("digits@1.2.3", "digits@1.3.0", 50, "all", ["p95_latency"], clock.now)
    assert run(service, devices, clock, r["id"])["state"] == "completed"
    fleet.experiments.create("digits@1.2.3", "digits@1.3.0", 50, "all", ["p95_latency"], clock.now)


def test_a_version_1_database_is_migrated_and_a_newer_one_refused(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # the experiments table as schema version 1 made it
        conn.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '1');"
            "CREATE TABLE experiments (id TEXT PRIMARY KEY, a_sha TEXT NOT NULL, b_sha TEXT NOT NULL, "
            "split REAL NOT NULL, selector TEXT NOT NULL, metrics TEXT NOT NULL, created_at REAL NOT NULL);"
            "INSERT INTO experiments VALUES ('e-old', 'a', 'b', 50, 'all', '[]', 1.0);"
        )
    conn.close()
    db = Database(path)
    rows = db.query("SELECT id, ended_at, outcome FROM experiments")
    assert [tuple(r) for r in rows] == [("e-old", None, "")]
    assert db.query("SELECT value FROM meta WHERE key='schema_version'")[0][0] == str(SCHEMA_VERSION)
    versions = [r[0] for r in db.query("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))  # every step from version 1 on ran, once
    assert db.schema_version() == SCHEMA_VERSION
    db.query("INSERT INTO schema_version VALUES (99, 'from the future', 0)")
    db.close()
    with pytest.raises(FleetError, match="schema version 99; this edgeml knows up to"):
        Database(path)

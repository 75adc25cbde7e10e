"""A/B experiments on hash-assigned cohorts, judged by stated tests with a minimum sample size."""

from __future__ import annotations

import pytest

from edgeml.fleet import FleetError
from edgeml.fleet.experiments import arm_of, two_proportions
from edgeml.fleet.simulated_device import Fault


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


def test_slower_arm_is_found_worse_on_latency(world, releases):
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


def test_accuracy_from_device_feedback_decides_an_experiment(world, releases):
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

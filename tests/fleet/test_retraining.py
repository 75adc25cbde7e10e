"""Sustained drift on several devices opens a retraining request with its evidence, exportable as data."""

from __future__ import annotations

import json

import numpy as np


def test_drift_on_enough_devices_opens_a_request_and_exports(world, releases, run, tmp_path):
    service, devices, clock = world
    art = service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    from edgeml.fleet import RolloutPlan

    r = service.fleet.rollouts.create("digits@1.2.3", "all", RolloutPlan.build("100%", "", "0s", "10m", []), clock.now)
    run(service, devices, clock, r["id"])
    profile = art["manifest"]["reference_profile"]
    for i, d in enumerate(devices):
        d.reference_profile = profile
        d.drift = 0.6 if i < 4 else 0.0  # four devices see shifted inputs, six do not
        d.emit_telemetry(calls=500)
    service.pump()
    touched = service.fleet.retraining.scan(clock.now)
    requests = service.fleet.retraining.list()
    assert len(touched) == 1 and len(requests) == 1
    req = requests[0]
    assert req["input"] == "input" and req["feature"] == 0 and req["max_psi"] > 0.25
    assert set(req["devices"]) == {d.device_id for d in devices[:4]}
    folder = service.fleet.retraining.export(req["id"], tmp_path / "dataset")
    evidence = json.loads((folder / "request.json").read_text())
    assert evidence["id"] == req["id"]
    with np.load(folder / "drift.npz") as z:
        assert z["reference_counts"].sum() > 0 and len(z.files) == 2 + 4


def test_drift_on_one_device_is_not_a_fleet_signal(world, releases, run):
    service, devices, clock = world
    art = service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    from edgeml.fleet import RolloutPlan

    r = service.fleet.rollouts.create("digits@1.2.3", "all", RolloutPlan.build("100%", "", "0s", "10m", []), clock.now)
    run(service, devices, clock, r["id"])
    for i, d in enumerate(devices):
        d.reference_profile = art["manifest"]["reference_profile"]
        d.drift = 0.9 if i == 0 else 0.0
        d.emit_telemetry(calls=500)
    service.pump()
    assert service.fleet.retraining.scan(clock.now) == []


def test_simulated_drift_opens_a_request_at_the_services_own_scan(world, releases, run):
    """What `edgeml fleet simulate --fault 'version=1.2.3:drift=0.5'` does: the devices take the reference
    profile from the artifact they installed, and the service's next scan (RETRAIN_SCAN_S) opens the request."""
    from edgeml.fleet import RolloutPlan
    from edgeml.fleet.fleet_service import RETRAIN_SCAN_S
    from edgeml.fleet.simulated_device import Fault

    service, devices, clock = world
    service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    for d in devices[:3]:
        d.faults = {"1.2.3": Fault(drift=0.5)}  # three of ten: the fewest devices (and 20 %+) that count
    r = service.fleet.rollouts.create("digits@1.2.3", "all", RolloutPlan.build("100%", "", "0s", "10m", []), clock.now)
    run(service, devices, clock, r["id"])
    for d in devices:
        d.emit_telemetry(calls=100)  # one batch: what `simulate` sends every 10 s
    service.pump()
    assert service.fleet.retraining.list() == []  # telemetry alone opens nothing: the scan does
    clock.now += RETRAIN_SCAN_S
    service.tick()
    (req,) = service.fleet.retraining.list()
    assert set(req["devices"]) == {"cam-00", "cam-01", "cam-02"} and req["max_psi"] > 0.25


def test_a_resolved_request_stays_resolved_while_its_old_release_still_reports(world, releases, run):
    """The retraining flow resolves a request once its new release reached the fleet; telemetry of the old release
    still inside the scan window must not reopen it (nor, by the table's unique key, fail the scan)."""
    service, devices, clock = world
    art = service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    from edgeml.fleet import RolloutPlan

    r = service.fleet.rollouts.create("digits@1.2.3", "all", RolloutPlan.build("100%", "", "0s", "10m", []), clock.now)
    run(service, devices, clock, r["id"])
    for d in devices:
        d.reference_profile = art["manifest"]["reference_profile"]
        d.drift = 0.6
        d.emit_telemetry(calls=500)
    service.pump()
    (rid,) = service.fleet.retraining.scan(clock.now)
    assert service.fleet.retraining.resolve(rid) is True
    assert service.fleet.retraining.resolve(rid) is False  # a re-run of the flow changes nothing
    for d in devices:
        d.emit_telemetry(calls=500)
    service.pump()
    service.fleet.retraining.scan(clock.now + 1)
    assert [(q["id"], q["state"]) for q in service.fleet.retraining.list()] == [(rid, "resolved")]

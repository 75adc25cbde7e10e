"""A simulated device reads the reference profile out of the artifact it downloaded (and trusts it only once
the whole artifact verified), then reports input histograms over those bins with the drift it was given."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeml.fleet import FleetError, RolloutPlan
from edgeml.fleet.simulated_device import Fault, SimulatedDevice
from edgeml.protocol import ModelRef, decode_published
from edgeml.transport.memory_transport import MemoryBroker, MemoryTransport

FEATURE = {"counts": [10, 30, 40, 20], "edges": [0.0, 1.0, 2.0]}
PROFILE = {"inputs": {"x": {"kind": "values", "axis": 1, "features": [FEATURE]}}}


def drift_reported(device: SimulatedDevice, broker: MemoryBroker) -> tuple[int, ...]:
    sent = []
    probe = MemoryTransport(broker, "probe")
    probe.subscribe("edgeml/v1/devices/+/telemetry", lambda topic, payload: sent.append(payload))
    probe.connect()
    device.emit_telemetry(calls=100)
    probe.close()
    _, telemetry = decode_published(f"edgeml/v1/devices/{device.device_id}/telemetry", sent[-1])
    return telemetry.drift["x"][0]


@pytest.fixture
def device(keypair):
    from edgeml.artifact import load_public_key

    broker = MemoryBroker()
    d = SimulatedDevice("cam-00", "cpu-ort", MemoryTransport(broker, "cam-00"), load_public_key(keypair[1]))
    d.transport.connect()
    d.current = ModelRef("m", "1.0.0", 1, "a" * 64)
    d.reference_profile = PROFILE
    return d, broker


def test_drift_moves_that_share_of_the_reference_mix_to_the_top_bin(device):
    d, broker = device
    assert drift_reported(d, broker) == (10, 30, 40, 20)
    d.drift = 0.5
    assert drift_reported(d, broker) == (5, 15, 20, 60)
    d.faults = {"1.0.0": Fault(drift=1.0)}  # a fault's drift wins on its version
    assert drift_reported(d, broker) == (0, 0, 0, 100)
    d.faults = {"2.0.0": Fault(drift=1.0)}
    assert drift_reported(d, broker) == (5, 15, 20, 60)


def test_drift_outside_zero_to_one_is_refused():
    with pytest.raises(FleetError, match=r"drift 1.5 is outside \[0, 1\]"):
        Fault(drift=1.5)


def roll_out(service, devices, clock, run):
    plan = RolloutPlan.build("100%", "", "0s", "10m", [])
    r = service.fleet.rollouts.create("digits@1.2.3", "all", plan, clock.now)
    return run(service, devices, clock, r["id"])


def test_devices_read_the_reference_profile_from_the_artifact_they_installed(world, releases, run):
    service, devices, clock = world
    art = service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    assert all(d.reference_profile is None for d in devices)
    assert roll_out(service, devices, clock, run)["state"] == "completed"
    assert all(d.reference_profile == art["manifest"]["reference_profile"] for d in devices)
    for d in devices:
        d.emit_telemetry(calls=100)
    service.pump()
    (drift,) = service.fleet.db.query("SELECT drift FROM telemetry WHERE device_id='cam-00'")[0]
    assert '"input": {"0": [' in drift  # histograms over the manifest's bins reach the fleet


def test_a_tampered_artifact_is_refused_and_its_manifest_never_used(world, releases, run):
    service, devices, clock = world
    art = service.fleet.artifacts.publish(releases["1.2.3"], clock.now)
    stored = Path(service.fleet.artifacts.path(art["sha256"]))
    raw = stored.read_bytes()
    counts = raw.index(b'"counts"', raw.index(b'"reference_profile"'))
    at = next(i for i in range(counts, len(raw)) if raw[i : i + 1].isdigit())  # a reference histogram's first count
    stored.write_bytes(raw[:at] + str((int(raw[at : at + 1]) + 1) % 10).encode() + raw[at + 1 :])  # same size
    roll_out(service, devices, clock, run)
    assert sum(d.corrupt_installs for d in devices) > 0
    assert all(d.reference_profile is None for d in devices)

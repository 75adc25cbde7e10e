"""`simulate` over a real Mosquitto: devices fetch the artifact in chunks, read its reference profile from the
tar on the way, report drifted inputs, and the fleet service's own scan opens a retraining request."""

from __future__ import annotations

import asyncio
import time

import pytest

from edgeml.artifact import load_private_key, load_public_key
from edgeml.fleet import Fleet, FleetService, RolloutPlan, fleet_service
from edgeml.fleet.simulation import simulate
from edgeml.transport.mqtt_transport import MqttTransport

pytestmark = pytest.mark.broker


async def roll_out_when_registered(fleet: Fleet, n: int) -> None:
    while len(fleet.devices.select()) < n:
        await asyncio.sleep(0.2)
    fleet.rollouts.create("digits@1.2.3", "all", RolloutPlan.build("100%", "", "0s", "1m", []), time.time())


async def drifting_fleet(url: str, fleet: Fleet, public_key) -> object:
    roller = asyncio.create_task(roll_out_when_registered(fleet, 4))
    report = await simulate(url, 4, "cpu-ort", public_key, duration_s=10, drift=0.5, telemetry_period_s=1.0)
    roller.cancel()
    return report


def test_simulated_drift_reaches_a_retraining_request(tmp_path, keypair, broker, releases, monkeypatch):
    monkeypatch.setattr(fleet_service, "RETRAIN_SCAN_S", 1.0)  # NOTE: scan every second, not every minute
    fleet = Fleet(tmp_path / "fleet.sqlite", tmp_path / "store", load_private_key(keypair[0]))
    service = FleetService(fleet, MqttTransport(broker.url, "fleet"), chunk_size=4 * 1024, tick_s=0.2)
    service.start()
    try:
        art = fleet.artifacts.publish(releases["1.2.3"], time.time())
        assert art["size"] > 8 * 4 * 1024  # many chunks: the manifest is read across chunk boundaries
        report = asyncio.run(drifting_fleet(broker.url, fleet, load_public_key(keypair[1])))
        assert report.versions == {"1.2.3": 4} and report.corrupt_installs == 0
        deadline = time.monotonic() + 5
        while not fleet.retraining.list() and time.monotonic() < deadline:
            time.sleep(0.2)
        (req,) = fleet.retraining.list()
        assert req["artifact_sha"] == art["sha256"] and req["input"] == "input" and req["feature"] == 0
        assert len(req["devices"]) == 4 and req["max_psi"] > 0.25
    finally:
        service.stop()
        fleet.db.close()

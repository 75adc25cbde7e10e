"""Offline behaviour against the in-memory transport: the agent serves without a broker, spools telemetry
and events under a byte cap (oldest dropped first) and replays them in order once it connects."""

from __future__ import annotations

import numpy as np
import pytest

from edgeml.device_agent import PredictError
from edgeml.errors import EdgemlError
from edgeml.protocol import Kind
from edgeml.transport.memory_transport import MemoryTransport

DEVICE = "cam-042"
X = np.zeros((1, 1, 8, 8), np.float32)


class UnreachableAtFirst(MemoryTransport):
    """A transport whose broker is down until the test says otherwise."""

    reachable = False

    def connect(self, timeout: float = 10.0) -> None:
        if not self.reachable:
            raise EdgemlError("broker down (test)")
        super().connect(timeout)


def _telemetry_seqs(fleet, n):
    return [fleet.next(Kind.TELEMETRY).seq for _ in range(n)]


def test_broker_down_at_start_serves_spools_and_replays_in_order(
    memory_fleet, make_config, running_agents, preinstall, digits_artifact, wait_until
):
    broker, fleet = memory_fleet
    config = make_config()
    preinstall(config, digits_artifact)
    transport = UnreachableAtFirst(broker, DEVICE)
    agent = running_agents.start(config, transport)
    assert agent.predict({"input": X})["logits"].shape == (1, 10)  # the committed model serves offline
    agent.send_telemetry()
    agent.predict({"input": X})
    agent.send_telemetry()
    assert agent.status()["spool"]["messages"] == 2 and not agent.status()["connected"]
    transport.reachable = True
    transport.connect()  # the broker comes back
    assert fleet.next(Kind.HELLO).current.version == "1.2.3"
    assert _telemetry_seqs(fleet, 2) == [1, 2]
    wait_until(lambda: agent.status()["spool"]["messages"] == 0)
    agent.predict({"input": X})
    assert [b.telemetry.seq for b in agent.send_telemetry()] == [3]
    assert _telemetry_seqs(fleet, 1) == [3]  # sent directly now


def test_past_the_spool_cap_the_oldest_batches_are_dropped(
    memory_fleet, make_config, running_agents, preinstall, digits_artifact
):
    broker, fleet = memory_fleet
    config = make_config(telemetry={"spool_max_bytes": 500})
    preinstall(config, digits_artifact)
    transport = UnreachableAtFirst(broker, DEVICE)
    agent = running_agents.start(config, transport)
    sizes = []
    for _ in range(5):
        agent.predict({"input": X})
        sizes += [len(b.payload) for b in agent.send_telemetry()]
    assert min(sizes) > 120 and max(sizes) < 200  # compressed; with record headers two fit under the cap, three not
    assert len(agent.spool) == 2 and agent.spool.dropped == 3 and agent.spool.size_bytes <= 500
    transport.reachable = True
    transport.connect()
    assert _telemetry_seqs(fleet, 2) == [4, 5]  # the newest survive, in order


def test_events_raised_offline_arrive_after_reconnect(
    memory_fleet, make_config, running_agents, preinstall, digits_artifact
):
    broker, fleet = memory_fleet
    config = make_config(telemetry={"drift_min_calls": 5, "drift_psi_threshold": 0.2})
    preinstall(config, digits_artifact)
    transport = UnreachableAtFirst(broker, DEVICE)
    agent = running_agents.start(config, transport)
    for _ in range(20):
        agent.predict({"input": np.full((1, 1, 8, 8), 16.0, np.float32)})  # far outside the calibration range
    agent.send_telemetry()
    transport.reachable = True
    transport.connect()
    batch = fleet.next(Kind.TELEMETRY)
    drift = fleet.event("drift")
    assert drift.seq == 1 and not drift.ok and "input 'input' feature 0" in drift.reason
    assert drift.artifact == batch.model.sha256


def test_predict_before_any_model_is_a_clear_error(memory_fleet, make_config, running_agents):
    broker, _ = memory_fleet
    agent = running_agents.start(make_config(), MemoryTransport(broker, DEVICE))
    with pytest.raises(PredictError, match="no model is committed") as err:
        agent.predict({"input": X})
    assert err.value.code == "no_model"

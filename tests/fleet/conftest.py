"""Fleet fixtures: two signed releases of the digits model, and a fleet on a fresh database."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edgeml.artifact import load_public_key
from edgeml.fleet import FleetService
from edgeml.fleet.simulated_device import Fault, SimulatedDevice
from edgeml.transport.memory_transport import MemoryBroker, MemoryTransport

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"


@pytest.fixture(scope="session")
def hotfix(tmp_path_factory, keypair):
    """digits 1.2.4 for cpu-ort: a hotfix above 1.2.3 and below 1.3.0 (the `releases` fixture's two)."""
    import edgeml

    out = tmp_path_factory.mktemp("hotfix") / "1.2.4"
    edgeml.compile(str(DIGITS / "model.onnx"), "cpu-ort", key=keypair[0], out=out,
                   cache_dir=tmp_path_factory.mktemp("hotfix-cache"), version="1.2.4", name="digits",
                   options={"precision": "fp32"})  # fmt: skip
    return out


@pytest.fixture
def fleet(tmp_path, keypair, db_url):
    """A fleet on a fresh database: each test that uses it runs on SQLite and on PostgreSQL."""
    from edgeml.artifact import load_private_key
    from edgeml.fleet import Fleet

    f = Fleet(db_url, tmp_path / "store", load_private_key(keypair[0]))
    yield f
    f.db.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(fleet, keypair):
    """A fleet service and ten simulated cpu-ort devices on the in-memory broker, with a controlled clock;
    version 1.3.0 runs 40 ms slower on them (a regression to catch)."""
    broker, clock = MemoryBroker(), Clock()
    # NOTE: unpaced: these tests step a fake clock through rollouts; pacing has its own tests
    service = FleetService(fleet, MemoryTransport(broker, "fleet"), chunk_size=16 * 1024, clock=clock,
                           egress_bytes_s=math.inf, stream_bytes_s=math.inf)  # fmt: skip
    # NOTE: a wave's stream waits (real seconds) for devices just sent a desired state; this world steps a fake
    # clock in a blink, so a device that vanished would hold it for the whole test: no join wait here
    service.chunks.join_wait_s = 0.0
    service.start(worker=False)
    devices = []
    for i in range(10):
        d = SimulatedDevice(f"cam-{i:02d}", "cpu-ort", MemoryTransport(broker, f"cam-{i:02d}"),
                            load_public_key(keypair[1]), faults={"1.3.0": Fault(latency_ms=40.0)}, seed=i)  # fmt: skip
        d.start()
        devices.append(d)
    service.pump()
    return service, devices, clock


def _run(service, devices, clock, rollout_id, steps=200, telemetry=False):
    for _ in range(steps):
        clock.now += 5
        service.tick()
        while service.pump():
            pass
        for d in devices:
            if telemetry and d.current:
                d.emit_telemetry(calls=50)
        service.pump()
        status = service.fleet.rollouts.status(rollout_id)
        if status["state"] in ("completed", "aborted") and not any(
            e["state"] in ("in_progress", "reverting") for e in status["executions"]
        ):
            return status
    raise AssertionError(f"rollout did not settle: {service.fleet.rollouts.status(rollout_id)}")


@pytest.fixture
def run():
    """Drive the world until a rollout settles: returns its final status."""
    return _run

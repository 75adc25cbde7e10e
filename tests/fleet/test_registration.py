"""Registration whatever starts first, on a real Mosquitto and on the embedded broker: devices that connected
before the fleet subscribed are registered (their hello is retained), a status that arrives before its
device's hello is kept until the hello comes, and 50 devices connecting at once are all registered."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from edgeml.artifact import load_private_key, load_public_key
from edgeml.fleet import Fleet, FleetService
from edgeml.fleet.database import FleetError
from edgeml.fleet.embedded_broker import EmbeddedBroker, find_mosquitto
from edgeml.fleet.simulated_device import SimulatedDevice
from edgeml.fleet.simulation import simulate
from edgeml.protocol import Hello, Status, encode, hello_topic, status_topic
from edgeml.transport.memory_transport import MemoryBroker, MemoryTransport
from edgeml.transport.mqtt_transport import MqttTransport


def test_the_embedded_broker_refuses_a_port_another_broker_holds():
    with socket.socket() as held:  # NOTE: a broker already there answered the readiness probe: a false "started"
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        broker = EmbeddedBroker(port)
        with pytest.raises(FleetError, match="already in use") as caught:
            broker.start(timeout=2.0)
            broker.stop()  # NOTE: reached only when it wrongly "started": leave no broker behind
    assert f"--broker mqtt://127.0.0.1:{port}" in caught.value.hint and "--port" in caught.value.hint


@pytest.mark.skipif(find_mosquitto() is None, reason="Mosquitto is not installed (CI installs it)")
def test_the_embedded_mosquitto_dies_with_a_fleet_killed_by_sigkill():
    import signal
    import subprocess
    import sys

    script = (
        "import socket, sys, time\n"
        "from edgeml.fleet.embedded_broker import EmbeddedBroker\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "b = EmbeddedBroker(port, kind='mosquitto'); b.start()\n"
        "print(port, flush=True); time.sleep(600)\n"
    )
    fleet = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        port = int(fleet.stdout.readline())
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # the broker listens
    finally:
        fleet.send_signal(signal.SIGKILL)  # no finally, no atexit: only the kernel can stop the child
        fleet.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return  # nothing listens any more: the broker went with its fleet
        time.sleep(0.1)
    pytest.fail(f"the embedded Mosquitto still listens on {port} after its fleet process was killed")


def make_service(tmp_path, keypair, transport):
    fleet = Fleet(tmp_path / "fleet.sqlite", tmp_path / "store", load_private_key(keypair[0]))
    return FleetService(fleet, transport, tick_s=0.2)


def wait_registered(service, n, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(service.fleet.devices.select()) >= n:
            break
        time.sleep(0.2)
    return service.fleet.devices.select()


def test_a_status_before_the_hello_is_applied_when_the_hello_arrives(tmp_path, keypair):
    service = make_service(tmp_path, keypair, MemoryTransport(MemoryBroker(), "fleet"))
    status = Status("idle", True, int(time.time()), {}, None, None)
    service._handle(status_topic("cam-1"), encode(status))
    assert service.fleet.devices.get("cam-1") is None
    service._handle(hello_topic("cam-1"), encode(Hello("cam-1", "cpu-ort", "1", 10**9, {}, None)))
    device = service.fleet.devices.get("cam-1")
    assert device is not None and device["state"] == "idle" and device["online"]


@pytest.mark.broker
def test_devices_that_connected_before_the_fleet_are_registered(tmp_path, keypair, broker):
    devices = []
    for i in range(5):
        d = SimulatedDevice(f"early-{i}", "cpu-ort", None, load_public_key(keypair[1]), seed=i)
        d.transport = MqttTransport(broker.url, d.device_id, will=d.will())
        d.start()
        devices.append(d)
    time.sleep(0.5)  # every hello and status published before anyone listens
    service = make_service(tmp_path, keypair, MqttTransport(broker.url, "fleet"))
    service.start()
    try:
        registered = wait_registered(service, 5, timeout=10)
        assert sorted(d["id"] for d in registered) == [f"early-{i}" for i in range(5)]
        deadline = time.monotonic() + 10  # NOTE: their retained statuses follow the hellos
        while time.monotonic() < deadline and not all(d["state"] == "idle" for d in registered):
            time.sleep(0.2)
            registered = service.fleet.devices.select()
        assert all(d["online"] and d["state"] == "idle" for d in registered), registered
    finally:
        for d in devices:
            d.transport.close()
        service.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.broker
@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_the_embedded_broker_registers_50_devices_connecting_at_once(tmp_path, keypair, kind, caplog):
    if kind == "mosquitto" and find_mosquitto() is None:
        pytest.skip("Mosquitto is not installed")
    pytest.importorskip("amqtt") if kind == "amqtt" else None
    embedded = EmbeddedBroker(_free_port(), kind=kind)
    embedded.start()
    service = make_service(tmp_path, keypair, MqttTransport(embedded.url, "fleet"))
    service.start()
    caplog.set_level(logging.ERROR)
    try:
        report = asyncio.run(simulate(embedded.url, 50, "cpu-ort", load_public_key(keypair[1]), duration_s=4.0,
                                      telemetry_period_s=1e9, prefix="rush"))  # fmt: skip
        registered = wait_registered(service, 50, timeout=10)
        assert report.devices == 50 and len(registered) == 50
        assert "dictionary changed size" not in caplog.text
    finally:
        service.stop()
        embedded.stop()

"""A device whose hello got lost on the way in (a broker queue or the fleet's inbox dropped it) is still
registered: its first message the fleet cannot place makes the fleet ask the broker for the device's retained
hello again (and again every ASK_TTL_S, ASK_TRIES times), and a status that arrived first is applied then. Asks
are bounded: a flood of ids that never said hello holds at most OPEN_ASKS subscriptions, each gone after ASK_TTL_S,
and at most WANTED_MOST ids. On the in-memory twin and on Mosquitto."""

from __future__ import annotations

import threading
import time

import pytest

from edgeml.artifact import load_public_key
from edgeml.fleet import FleetService
from edgeml.fleet.hello_requests import ASK_TRIES, ASK_TTL_S, OPEN_ASKS, HelloRequests
from edgeml.fleet.simulated_device import SimulatedDevice
from edgeml.protocol import Status, encode, hello_topic, status_topic
from edgeml.transport.memory_transport import MemoryBroker, MemoryTransport
from edgeml.transport.mqtt_transport import MqttTransport


class LosingFirstHello:
    """A transport that loses the first delivery of each hello topic in `lose` before the fleet sees it, as an
    overflowing broker queue would; everything else passes through. One wrapper per handler, so a handler under
    overlapping filters stays one handler to the transport underneath."""

    def __init__(self, inner, lose: set[str]) -> None:
        self.inner, self.lose, self.lost = inner, set(lose), []
        self._wrapped: dict = {}
        self._lock = threading.Lock()

    def subscribe(self, topic_filter, handler, qos: int = 1) -> None:
        if handler not in self._wrapped:
            self._wrapped[handler] = self._losing(handler)
        self.inner.subscribe(topic_filter, self._wrapped[handler], qos)

    def _losing(self, handler):
        def deliver(topic: str, payload: bytes) -> None:
            with self._lock:
                lose = topic in self.lose
                self.lose.discard(topic)
            if lose:
                self.lost.append(topic)
                return
            handler(topic, payload)

        return deliver

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _device(device_id: str, transport, keypair) -> SimulatedDevice:
    return SimulatedDevice(device_id, "cpu-ort", transport, load_public_key(keypair[1]))


def _hello_asks(transport: MemoryTransport) -> list[str]:
    """The fleet's subscriptions to one device's hello (its own wildcard excluded)."""
    return [f for f in transport.topic_filters if f.endswith("/hello") and "+" not in f]


def _status(state: str = "idle") -> bytes:
    return encode(Status(state, True, int(time.time()), {}, None, None))


def test_a_device_whose_hello_was_lost_is_registered_with_its_parked_status(fleet, keypair):
    broker = MemoryBroker()
    memory = MemoryTransport(broker, "fleet")
    transport = LosingFirstHello(memory, {hello_topic("cam-1")})
    service = FleetService(fleet, transport)
    service.start(worker=False)
    _device("cam-1", MemoryTransport(broker, "cam-1"), keypair).start()  # its hello (retained), then its status
    service.pump()
    assert transport.lost == [hello_topic("cam-1")]  # the first delivery of the hello never reached the fleet
    device = fleet.devices.get("cam-1")
    assert device is not None and device["online"] and device["state"] == "idle"  # the parked status, applied
    assert fleet.events.rejected() == {"unknown_device": 1}
    assert service.hellos.asked == 1 and service.hellos.open == [] and _hello_asks(memory) == []


def test_an_unknown_device_is_asked_again_every_ttl_until_it_gives_up(fleet):
    now = 1_800_000_000.0
    memory = MemoryTransport(MemoryBroker(), "fleet")
    service = FleetService(fleet, memory, clock=lambda: now)
    service.start(worker=False)
    for _ in range(3):  # NOTE: no retained hello exists for this id: every ask stays unanswered
        memory.broker.route(status_topic("ghost"), _status(), retain=False)
    service.pump()
    assert service.hellos.asked == 1 and _hello_asks(memory) == [hello_topic("ghost")]
    now += ASK_TTL_S / 2
    service.tick()
    assert service.hellos.asked == 1  # NOTE: never twice within ASK_TTL_S
    for tries in range(2, ASK_TRIES + 1):  # NOTE: asked again from the tick, with no new message from it
        now += ASK_TTL_S
        service.tick()
        assert service.hellos.asked == tries and _hello_asks(memory) == [hello_topic("ghost")]
    now += ASK_TTL_S
    service.tick()
    assert _hello_asks(memory) == [] and service.hellos.wanted == [] and service.hellos.given_up == 1
    memory.broker.route(status_topic("ghost"), _status(), retain=False)  # NOTE: its next message: asked again
    service.pump()
    assert service.hellos.asked == ASK_TRIES + 1 and _hello_asks(memory) == [hello_topic("ghost")]
    assert fleet.devices.get("ghost") is None and fleet.events.rejected() == {"unknown_device": 4}


def test_a_flood_of_unknown_ids_holds_at_most_the_bound_of_subscriptions(fleet):
    now = 1_800_000_000.0
    memory = MemoryTransport(MemoryBroker(), "fleet")
    service = FleetService(fleet, memory, clock=lambda: now)
    service.start(worker=False)
    own = len(memory.topic_filters)
    for i in range(OPEN_ASKS + 50):
        memory.broker.route(status_topic(f"foreign-{i}"), _status(), retain=False)
    service.pump()
    most = len(memory.topic_filters)
    assert len(_hello_asks(memory)) == OPEN_ASKS and len(service.hellos.wanted) == OPEN_ASKS + 50
    for _ in range(ASK_TRIES * 2 + 2):  # NOTE: every id gets its ASK_TRIES asks, never more than OPEN_ASKS at once
        now += ASK_TTL_S
        service.tick()
        most = max(most, len(memory.topic_filters))
    assert most == own + OPEN_ASKS and service.hellos.asked == (OPEN_ASKS + 50) * ASK_TRIES
    assert len(memory.topic_filters) == own and service.hellos.wanted == [] and service.hellos.open == []


def test_remembered_unknown_ids_are_bounded_oldest_forgotten_first():
    memory = MemoryTransport(MemoryBroker(), "fleet")
    memory.connect()
    hellos = HelloRequests(memory, lambda topic, payload: None, most=3, wanted_most=5)
    for i in range(20):
        hellos.want(f"d-{i}", 0.0)
    assert hellos.wanted == [f"d-{i}" for i in range(15, 20)] and len(hellos.open) <= 3
    assert sorted(memory.topic_filters) == sorted(hello_topic(d) for d in hellos.open)


@pytest.mark.broker
@pytest.mark.parametrize("first", ["device", "fleet"])
def test_on_mosquitto_a_device_whose_first_hello_was_lost_registers(fleet, keypair, broker, first):
    device = _device("lost-1", None, keypair)
    device.transport = MqttTransport(broker.url, device.device_id, will=device.will())
    transport = LosingFirstHello(MqttTransport(broker.url, "fleet"), {hello_topic("lost-1")})
    service = FleetService(fleet, transport, tick_s=0.2)
    try:
        starts = [device.start, service.start] if first == "device" else [service.start, device.start]
        for start in starts:
            start()
            time.sleep(0.5)  # NOTE: the first one's messages settle before the other connects
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (fleet.devices.get("lost-1") or {}).get("state") != "idle":
            time.sleep(0.1)
        registered = fleet.devices.get("lost-1")
        assert transport.lost == [hello_topic("lost-1")]
        assert registered is not None and registered["online"] and registered["state"] == "idle", registered
        assert service.hellos.asked >= 1 and fleet.events.rejected().get("unknown_device", 0) >= 1
        deadline = time.monotonic() + 10  # NOTE: the worker drops the ask right after it applied the hello
        while time.monotonic() < deadline and service.hellos.open:
            time.sleep(0.1)
        assert service.hellos.open == []
    finally:
        device.transport.close()
        service.stop()

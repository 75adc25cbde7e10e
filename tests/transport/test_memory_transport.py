"""The in-memory twin keeps the real transport's contract (for unit tests of fleet/agent logic)."""

from __future__ import annotations

from edgeml.transport import Will
from edgeml.transport.memory_transport import MemoryBroker, MemoryTransport


def test_retained_wildcards_will_and_offline_queue():
    broker = MemoryBroker()
    seen = []
    fleet = MemoryTransport(broker, "fleet")
    fleet.connect()
    fleet.subscribe("edgeml/v1/devices/+/status", lambda t, p: seen.append((t, p)))
    device = MemoryTransport(broker, "cam-1", will=Will("edgeml/v1/devices/cam-1/status", b"offline"))
    device.publish("edgeml/v1/devices/cam-1/status", b"queued-while-offline", retain=True)
    assert seen == []
    device.connect()
    assert seen == [("edgeml/v1/devices/cam-1/status", b"queued-while-offline")]
    device.vanish()
    assert seen[-1] == ("edgeml/v1/devices/cam-1/status", b"offline")
    late = []
    other = MemoryTransport(broker, "late")
    other.connect()
    other.subscribe("edgeml/v1/#", lambda t, p: late.append(p))
    assert late == [b"offline"]


def test_a_throwing_handler_is_counted():
    broker = MemoryBroker()
    t = MemoryTransport(broker, "c")
    t.connect()
    t.subscribe("x", lambda *_: 1 / 0)
    t.publish("x", b"1")
    assert t.handler_errors == 1


def test_a_handler_under_overlapping_filters_gets_each_message_once():
    broker = MemoryBroker()
    seen = []

    def handler(topic: str, payload: bytes) -> None:
        seen.append(payload)

    t = MemoryTransport(broker, "fleet")
    t.connect()
    t.subscribe("edgeml/v1/devices/+/hello", handler)
    broker.route("edgeml/v1/devices/cam-1/hello", b"retained", retain=True)
    t.subscribe("edgeml/v1/devices/cam-1/hello", handler)  # NOTE: a fresh subscription: the retained one again
    broker.route("edgeml/v1/devices/cam-1/hello", b"live", retain=False)
    t.unsubscribe("edgeml/v1/devices/cam-1/hello")
    broker.route("edgeml/v1/devices/cam-1/hello", b"after", retain=False)
    assert seen == [b"retained", b"retained", b"live", b"after"]

"""The paho transport against a real Mosquitto: delivery, retained state, last will, broker restarts,
and a handler that throws never stops the network loop."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time

import pytest

from edgeml.errors import EdgemlError
from edgeml.transport import Will
from edgeml.transport.mqtt_transport import MqttTransport, TransportError

pytestmark = pytest.mark.broker


def _collector():
    q: queue.Queue = queue.Queue()
    return q, lambda topic, payload: q.put((topic, payload))


def _client(broker, name, **kw):
    t = MqttTransport(broker.url, name, **kw)
    t.connect(timeout=10)
    return t


def test_round_trip_wildcards_and_retained(broker):
    got, handler = _collector()
    sub = _client(broker, "sub")
    sub.subscribe("edgeml/v1/devices/+/status", handler)
    pub = _client(broker, "pub")
    pub.publish("edgeml/v1/devices/cam-1/status", b"online", retain=True)
    assert got.get(timeout=5) == ("edgeml/v1/devices/cam-1/status", b"online")
    late, late_handler = _collector()
    third = _client(broker, "late")
    third.subscribe("edgeml/v1/devices/#", late_handler)
    assert late.get(timeout=5) == ("edgeml/v1/devices/cam-1/status", b"online")  # retained
    for t in (sub, pub, third):
        t.close()


def test_a_shared_subscription_splits_messages_over_its_group(broker):
    """`$share/GROUP/filter`: each message reaches one member (paho alone would not match it to the handler)."""
    got, handler = _collector()
    members = [_client(broker, f"member-{i}") for i in range(2)]
    for member in members:
        member.subscribe("$share/g/edgeml/v1/devices/+/telemetry", handler)
    time.sleep(0.5)  # NOTE: the SUBACKs: the broker counts a member from then on
    pub = _client(broker, "pub")
    for i in range(10):
        pub.publish(f"edgeml/v1/devices/cam-{i}/telemetry", b"t")
    received = sorted(got.get(timeout=5)[0] for _ in range(10))
    assert received == sorted(f"edgeml/v1/devices/cam-{i}/telemetry" for i in range(10))
    time.sleep(0.3)
    assert got.empty()  # each once, not once per member
    for t in (*members, pub):
        t.close()


def test_a_fresh_subscription_redelivers_the_retained_message_once_to_a_handler_under_overlapping_filters(broker):
    """What the fleet relies on to ask again for a lost hello (fleet/hello_requests.py)."""
    got, handler = _collector()
    sub = _client(broker, "sub")
    sub.subscribe("edgeml/v1/devices/+/hello", handler)
    pub = _client(broker, "pub")
    pub.publish("edgeml/v1/devices/cam-1/hello", b"retained", retain=True)
    assert got.get(timeout=5) == ("edgeml/v1/devices/cam-1/hello", b"retained")
    sub.subscribe("edgeml/v1/devices/cam-1/hello", handler)
    assert got.get(timeout=5) == ("edgeml/v1/devices/cam-1/hello", b"retained")
    pub.publish("edgeml/v1/devices/cam-1/hello", b"live")  # NOTE: Mosquitto sends a client one copy
    assert got.get(timeout=5) == ("edgeml/v1/devices/cam-1/hello", b"live")
    sub.unsubscribe("edgeml/v1/devices/cam-1/hello")
    pub.publish("edgeml/v1/devices/cam-1/hello", b"after")
    assert got.get(timeout=5) == ("edgeml/v1/devices/cam-1/hello", b"after")
    time.sleep(0.3)
    assert got.empty(), "a message reached the handler twice"
    for t in (sub, pub):
        t.close()


def test_a_throwing_handler_is_counted_and_the_loop_goes_on(broker):
    got, handler = _collector()
    calls = []

    def bad(topic, payload):
        calls.append(payload)
        raise ValueError("garbage")

    sub = _client(broker, "sub")
    sub.subscribe("t/bad", bad)
    sub.subscribe("t/good", handler)
    pub = _client(broker, "pub")
    pub.publish("t/bad", b"\xff\x00")
    pub.publish("t/good", b"ok")
    assert got.get(timeout=5) == ("t/good", b"ok")
    assert calls == [b"\xff\x00"] and sub.handler_errors == 1
    sub.close()
    pub.close()


def test_last_will_marks_a_killed_client_offline(broker):
    got, handler = _collector()
    watcher = _client(broker, "watcher")
    watcher.subscribe("edgeml/v1/devices/cam-9/status", handler)
    code = (
        "import time; from edgeml.transport import Will; from edgeml.transport.mqtt_transport import MqttTransport;"
        f"t = MqttTransport({broker.url!r}, 'cam-9', will=Will('edgeml/v1/devices/cam-9/status', b'offline'));"
        "t.connect(); t.publish('edgeml/v1/devices/cam-9/status', b'online', retain=True); print('up', flush=True);"
        "time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    assert got.get(timeout=5)[1] == b"online"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert got.get(timeout=10)[1] == b"offline"
    watcher.close()


def test_broker_restart_restores_subscriptions_and_delivers_queued_messages(broker):
    got, handler = _collector()
    sub = _client(broker, "sub")
    sub.subscribe("t/after", handler)
    pub = _client(broker, "pub")
    broker.stop()
    deadline = time.monotonic() + 10
    while (sub.connected or pub.connected) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sub.connected and not pub.connected
    broker.start()
    deadline = time.monotonic() + 20
    while not (sub.connected and pub.connected) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sub.connected and pub.connected
    pub.publish("t/after", b"hello again")
    assert got.get(timeout=10) == ("t/after", b"hello again")
    sub.close()
    pub.close()


def test_unreachable_broker_is_a_clear_error(broker):
    broker.stop()
    t = MqttTransport(broker.url, "lonely")
    with pytest.raises(TransportError, match=r"could not connect to the broker at mqtt://127\.0\.0\.1"):
        t.connect(timeout=1.5)
    t.close()


def test_bad_urls():
    for url in ("http://x", "mqtt://", "mqtt://host:notaport", "127.0.0.1:1883"):
        with pytest.raises(EdgemlError, match="broker URL"):
            MqttTransport(url, "c")


def test_will_type():
    assert Will("a", b"b").retain is True

"""An in-process MQTT twin for unit tests of logic: retained messages, wildcards, last wills, and
going offline on demand. Delivery is synchronous and in order. Integration tests use the real broker."""

from __future__ import annotations

import logging
from collections.abc import Callable

from paho.mqtt.client import topic_matches_sub

from edgeml.transport.transport import Handler, Will

__all__ = ["MemoryBroker", "MemoryTransport"]

log = logging.getLogger(__name__)


class MemoryBroker:
    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self.clients: list[MemoryTransport] = []
        self.published: list[tuple[str, bytes, bool]] = []

    def route(self, topic: str, payload: bytes, retain: bool) -> None:
        self.published.append((topic, payload, retain))
        if retain:
            if payload:
                self.retained[topic] = payload
            else:
                self.retained.pop(topic, None)
        for client in list(self.clients):
            client.deliver(topic, payload)


class MemoryTransport:
    def __init__(self, broker: MemoryBroker, client_id: str, will: Will | None = None) -> None:
        self.broker, self.client_id, self.will = broker, client_id, will
        self.handler_errors = 0
        self.on_connect: Callable[[], None] | None = None
        self._subscriptions: dict[str, Handler] = {}
        self._connected = False
        self._queue: list[tuple[str, bytes, int, bool]] = []

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self, timeout: float = 10.0) -> None:
        self._connected = True
        self.broker.clients.append(self)
        for topic_filter, handler in list(self._subscriptions.items()):  # NOTE: a handler may subscribe
            self._replay_retained(topic_filter, handler)
        queued, self._queue = self._queue, []
        for args in queued:
            self.publish(*args)
        if self.on_connect is not None:
            self.on_connect()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        if not self._connected:
            self._queue.append((topic, payload, qos, retain))
            return
        self.broker.route(topic, payload, retain)

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        self._subscriptions[topic_filter] = handler
        if self._connected:
            self._replay_retained(topic_filter, handler)

    @property
    def topic_filters(self) -> list[str]:
        """What this client is subscribed to now."""
        return list(self._subscriptions)

    def unsubscribe(self, topic_filter: str) -> None:
        self._subscriptions.pop(topic_filter, None)

    def close(self) -> None:
        self._drop()

    def vanish(self) -> None:
        """Drop off the network without a clean disconnect: the broker publishes the last will."""
        self._drop()
        if self.will is not None:
            self.broker.route(self.will.topic, self.will.payload, self.will.retain)

    def deliver(self, topic: str, payload: bytes) -> None:
        matching = (h for f, h in list(self._subscriptions.items()) if topic_matches_sub(f, topic))
        for handler in dict.fromkeys(matching):  # NOTE: once per handler, as MqttTransport does
            self._call(handler, topic, payload)

    def _replay_retained(self, topic_filter: str, handler: Callable[[str, bytes], None]) -> None:
        for topic, payload in list(self.broker.retained.items()):
            if topic_matches_sub(topic_filter, topic):
                self._call(handler, topic, payload)

    def _call(self, handler: Handler, topic: str, payload: bytes) -> None:
        try:
            handler(topic, payload)
        except Exception:  # same contract as the real transport: a bad message never propagates
            self.handler_errors += 1
            log.exception("handler for %s failed", topic)

    def _drop(self) -> None:
        self._connected = False
        if self in self.broker.clients:
            self.broker.clients.remove(self)

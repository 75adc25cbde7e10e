"""The narrow interface the fleet service and the device agent use to talk MQTT.

Two implementations: `MqttTransport` (paho-mqtt against a real broker) and `MemoryTransport` (an
in-process twin for unit tests of logic; integration tests always run the real broker).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Handler", "Transport", "Will"]

Handler = Callable[[str, bytes], None]  # (topic, payload); exceptions are logged and counted, never propagated


@dataclass(frozen=True)
class Will:
    """The message the broker publishes for a client that vanishes (e.g. status → offline)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class Transport(Protocol):
    on_connect: Callable[[], None] | None  # set by the owner: called after every (re)connect

    @property
    def connected(self) -> bool: ...

    def connect(self, timeout: float = 10.0) -> None:
        """Connect (and keep reconnecting in the background); raise TransportError if the first try fails."""

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Send, or queue while disconnected (bounded); never blocks on the network."""

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Deliver matching messages to `handler`, once per message however many of its filters match; kept
        across reconnects. A subscription made while connected gets the filter's retained messages (again)."""

    def unsubscribe(self, topic_filter: str) -> None:
        """Stop delivering `topic_filter` (a no-op if it was not subscribed)."""

    def close(self) -> None:
        """Disconnect cleanly (no last will)."""

"""Device → fleet messages that must arrive (events, telemetry batches): published at once while the
broker is reachable and nothing older waits, else spooled to disk; the spool is replayed, in order, when
the connection comes back. Order is kept because nothing is published past a non-empty spool."""

from __future__ import annotations

import logging
import threading
from typing import Literal

from edgeml.device_agent.messaging.spool import Spool
from edgeml.errors import EdgemlError
from edgeml.transport import Transport

__all__ = ["Outbox"]

log = logging.getLogger(__name__)

Delivery = Literal["sent", "spooled"]


class Outbox:
    def __init__(self, transport: Transport, spool: Spool) -> None:
        self.transport = transport
        self.spool = spool
        self._lock = threading.Lock()

    def send(self, topic: str, payload: bytes) -> Delivery:
        """Publish (QoS 1) or spool `payload`; never blocks on the network."""
        with self._lock:
            if self.transport.connected and len(self.spool) == 0 and self._publish(topic, payload):
                return "sent"
            self.spool.append(topic, payload)
            return "spooled"

    def flush(self) -> int:
        """Replay the spool while connected; returns how many messages went out."""
        with self._lock:
            if not self.transport.connected or len(self.spool) == 0:
                return 0
            sent = self.spool.replay(self._publish_or_raise)
        if sent:
            log.info("replayed %d spooled message(s)", sent)
        return sent

    def _publish(self, topic: str, payload: bytes) -> bool:
        try:
            self.transport.publish(topic, payload, qos=1)
        except EdgemlError as exc:
            log.warning("publish to %s failed (%s); spooling it", topic, exc.message)
            return False
        return True

    def _publish_or_raise(self, topic: str, payload: bytes) -> None:
        if not self.transport.connected:
            raise EdgemlError("the broker went away during the replay")
        self.transport.publish(topic, payload, qos=1)

"""Unknown device → its retained hello asked of the broker again: a fresh, unshared subscription to the device's
hello topic makes the broker deliver the retained hello once more, without any change on the device.

A hello can be lost on its way in (the broker's per-session queue overflowed while the fleet's intake lagged, or
the fleet's own inbox was full), and a device sends one only when it connects: without a second ask it stays
unknown, its statuses parked, its events and telemetry refused. Each ask is one subscription, dropped when the
hello arrives or `ttl_s` after the ask; a device is asked at most once per `ttl_s`, and at most `most` asks are
open at once, so a flood of ids that never said hello costs a bounded number of subscriptions and bytes.
"""

from __future__ import annotations

import logging
import threading

from edgeml.protocol import hello_topic
from edgeml.transport import Handler, Transport

__all__ = ["ASK_TTL_S", "OPEN_ASKS", "HelloRequests"]

log = logging.getLogger(__name__)
ASK_TTL_S = 30.0  # how long one ask's subscription stays, and the least time between two asks for one device
OPEN_ASKS = 500  # subscriptions held for asks at once, at most


class HelloRequests:
    """The open asks: device id → when it was asked (oldest first). Thread-safe; the transport's calls are made
    under the lock so a subscribe and its unsubscribe can never swap places."""

    def __init__(self, transport: Transport, handler: Handler, ttl_s: float = ASK_TTL_S, most: int = OPEN_ASKS):
        self.transport, self.handler, self.ttl_s, self.most = transport, handler, ttl_s, most
        self.asked = self.refused = 0  # NOTE: counters for operators and tests: asks made, asks refused (full)
        self._open: dict[str, float] = {}
        self._lock = threading.Lock()
        self._warned_at: float | None = None

    @property
    def open(self) -> list[str]:
        """The device ids asked for and not answered yet, oldest first."""
        with self._lock:
            return list(self._open)

    def ask(self, device_id: str, now: float) -> bool:
        """Subscribe to `device_id`'s hello topic unless it was asked for within `ttl_s` or `most` asks are open;
        whether it subscribed now. The retained hello then reaches the handler like any other message."""
        with self._lock:
            self._expire(now)
            if device_id in self._open:
                return False
            if len(self._open) >= self.most:
                self._refuse(now)
                return False
            self._open[device_id] = now
            self.asked += 1
            self.transport.subscribe(hello_topic(device_id), self.handler)
        log.debug("asked the broker again for the retained hello of unknown device %s", device_id)
        return True

    def answered(self, device_id: str) -> None:
        """The hello of `device_id` arrived (by this ask or any other way): drop its subscription."""
        with self._lock:
            if self._open.pop(device_id, None) is not None:
                self.transport.unsubscribe(hello_topic(device_id))

    def expire(self, now: float) -> None:
        """Drop the subscriptions of asks older than `ttl_s` (no retained hello came: the id may be foreign)."""
        with self._lock:
            self._expire(now)

    def _expire(self, now: float) -> None:
        while self._open:
            device_id, asked_at = next(iter(self._open.items()))
            if 0.0 <= now - asked_at < self.ttl_s:  # NOTE: a clock stepped back expires it too, never strands it
                return
            del self._open[device_id]
            self.transport.unsubscribe(hello_topic(device_id))

    def _refuse(self, now: float) -> None:
        self.refused += 1
        if self._warned_at is None or now - self._warned_at >= self.ttl_s:
            self._warned_at = now
            log.warning(
                "%d asks for lost hellos are open (the most allowed): further unknown devices wait up to %g s "
                "for theirs (%d refused so far)", len(self._open), self.ttl_s, self.refused,
            )  # fmt: skip

"""Unknown device → its retained hello asked of the broker again: a fresh, unshared subscription to the device's
hello topic makes the broker deliver the retained hello once more, without any change on the device.

A hello can be lost on its way in (the broker's per-session queue overflowed while the fleet's intake lagged, or
the fleet's own inbox was full), and a device sends one only when it connects: without a second ask it stays
unknown, its statuses parked, its events and telemetry refused. An ask can be lost the same way, so a wanted
device is asked again every `ttl_s` (from the tick, whether it sends anything more or not) until its hello
arrives or it was asked `tries` times. Everything is bounded: at most `most` asks (subscriptions) open at once,
each dropped when the hello arrives or `ttl_s` after the ask, and at most `wanted_most` ids remembered (the
oldest forgotten first), so a flood of ids that never said hello costs bounded subscriptions and memory.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from edgeml.protocol import hello_topic
from edgeml.transport import Handler, Transport

__all__ = ["ASK_TRIES", "ASK_TTL_S", "OPEN_ASKS", "WANTED_MOST", "HelloRequests"]

log = logging.getLogger(__name__)
ASK_TTL_S = 10.0  # how long one ask's subscription stays, and the least time between two asks for one device
ASK_TRIES = 6  # asks for one device before giving up on it (until its next message)
OPEN_ASKS = 100  # subscriptions held for asks at once, at most (also the largest burst of hellos one tick asks for)
WANTED_MOST = 10_000  # unknown devices remembered, at most


@dataclass
class _Want:
    tries: int = 0
    due: float = float("-inf")  # when it may be asked (again)


class HelloRequests:
    """Unknown device ids wanted (oldest first) and the asks open for them. Thread-safe; the transport's calls are
    made under the lock so a subscribe and its unsubscribe never swap places."""

    def __init__(
        self, transport: Transport, handler: Handler, ttl_s: float = ASK_TTL_S, most: int = OPEN_ASKS,
        tries: int = ASK_TRIES, wanted_most: int = WANTED_MOST,
    ) -> None:  # fmt: skip
        self.transport, self.handler = transport, handler
        self.ttl_s, self.most, self.tries, self.wanted_most = ttl_s, most, tries, wanted_most
        self.asked = self.given_up = 0  # NOTE: counters for operators and tests
        self._wanted: dict[str, _Want] = {}
        self._open: dict[str, float] = {}  # device id → when asked, oldest first: each one subscription
        self._lock = threading.Lock()

    @property
    def open(self) -> list[str]:
        """The device ids with an ask (a subscription) open, oldest first."""
        with self._lock:
            return list(self._open)

    @property
    def wanted(self) -> list[str]:
        """The unknown device ids still to be registered, oldest first."""
        with self._lock:
            return list(self._wanted)

    def want(self, device_id: str, now: float) -> None:
        """A message came from `device_id`, which has not said hello: ask for its hello now if it is due and an
        ask is free, else remember it for the tick (`pump`)."""
        with self._lock:
            self._expire(now)
            want = self._wanted.get(device_id)
            if want is None:
                want = self._wanted[device_id] = _Want()
                self._forget_oldest()
            if device_id not in self._open and self._due(want, now) and len(self._open) < self.most:
                self._ask(device_id, want, now)

    def pump(self, now: float) -> None:
        """Drop asks older than `ttl_s`; ask for wanted devices that are due, oldest first, while asks are free."""
        with self._lock:
            self._expire(now)
            for device_id, want in list(self._wanted.items()):
                if len(self._open) >= self.most:
                    return
                if device_id not in self._open and self._due(want, now):
                    self._ask(device_id, want, now)

    def answered(self, device_id: str) -> None:
        """The hello of `device_id` arrived (by an ask or any other way): forget it, drop its subscription."""
        with self._lock:
            self._wanted.pop(device_id, None)
            if self._open.pop(device_id, None) is not None:
                self.transport.unsubscribe(hello_topic(device_id))

    def _due(self, want: _Want, now: float) -> bool:
        return now >= want.due or want.due - now > self.ttl_s  # NOTE: a clock stepped back never strands one

    def _ask(self, device_id: str, want: _Want, now: float) -> None:
        want.tries += 1
        want.due = now + self.ttl_s
        self._open[device_id] = now
        self.asked += 1
        self.transport.subscribe(hello_topic(device_id), self.handler)
        log.debug("asked the broker again for the retained hello of unknown device %s (try %d)", device_id, want.tries)

    def _expire(self, now: float) -> None:
        while self._open:
            device_id, asked_at = next(iter(self._open.items()))
            if 0.0 <= now - asked_at < self.ttl_s:
                return
            del self._open[device_id]
            self.transport.unsubscribe(hello_topic(device_id))
            want = self._wanted.get(device_id)
            if want is not None and want.tries >= self.tries:
                del self._wanted[device_id]
                self.given_up += 1
                log.info("no retained hello for %s after %d asks: asking again on its next message", device_id,
                         want.tries)  # fmt: skip

    def _forget_oldest(self) -> None:
        while len(self._wanted) > self.wanted_most:
            device_id = next(iter(self._wanted))
            del self._wanted[device_id]
            if self._open.pop(device_id, None) is not None:
                self.transport.unsubscribe(hello_topic(device_id))

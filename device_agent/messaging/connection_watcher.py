"""The transport's `connected` flag, polled → one callback per (re)connect and per loss.

The Transport interface has no connect hook, and a hook would run on the network thread anyway; polling
from the agent's housekeeping thread keeps every reaction (hello, status, spool replay, chunk re-requests)
off the network thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edgeml.transport import Transport

__all__ = ["ConnectionWatcher"]

log = logging.getLogger(__name__)


class ConnectionWatcher:
    def __init__(
        self, transport: Transport, on_connected: Callable[[], None], on_lost: Callable[[], None] | None = None
    ) -> None:
        self.transport = transport
        self.on_connected = on_connected
        self.on_lost = on_lost
        self.connected = False
        self.connects = 0

    def poll(self) -> None:
        now = self.transport.connected
        if now == self.connected:
            return
        self.connected = now
        if now:
            self.connects += 1
            log.info("connected to the fleet broker (connection %d)", self.connects)
            self.on_connected()
        else:
            log.warning("lost the fleet broker; spooling telemetry and events until it is back")
            if self.on_lost is not None:
                self.on_lost()

"""A per-device sequence number (event `seq`, telemetry `seq`) that only grows, across restarts too.

The fleet stores each (device, seq) once, so a number reused after a reboot would be dropped as a
duplicate. Writing the file on every increment would cost an fsync per event; instead the counter
reserves a block of `block` numbers on disk and hands them out from memory. After a crash the next
process starts past the reserved block: a gap, never a reuse.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from edgeml.atomic_files import read_json, write_json_atomic

__all__ = ["SequenceCounter"]

log = logging.getLogger(__name__)


class SequenceCounter:
    """next() → 1, 2, 3, … persisted in `path`; thread-safe."""

    def __init__(self, path: Path, block: int = 64) -> None:
        self.path = path
        self.block = block
        self._lock = threading.Lock()
        self._next = self._load() + 1
        self._reserved = self._next - 1

    def next(self) -> int:
        with self._lock:
            if self._next > self._reserved:
                self._reserved = self._next + self.block - 1
                write_json_atomic(self.path, {"v": 1, "reserved": self._reserved})
            value, self._next = self._next, self._next + 1
            return value

    def _load(self) -> int:
        try:
            saved = read_json(self.path)
        except (OSError, ValueError) as exc:
            # NOTE: restarting at 1 would make the fleet drop every number it already saw as a duplicate;
            # the clock in milliseconds is past any count this device reached.
            start = int(time.time() * 1000)
            log.error("sequence file %s is unreadable (%s); counting on from %d", self.path, exc, start)
            return start
        reserved = saved.get("reserved") if isinstance(saved, dict) else None
        return reserved if isinstance(reserved, int) and reserved >= 0 else 0

"""Chunk requests → artifact chunks published on the artifact's shared stream.

Requests are collected and served together by `flush()`: every chunk asked for by any device since the
last flush is published once, on the stream every fetching device is subscribed to (a device subscribes
before it asks), so one publish serves them all. A chunk published less than `dedupe_s` ago is not sent
again: a device asking for it was almost always subscribed already and has it on the way; one that
joined too late asks again once its stream has been quiet for a while (longer than `dedupe_s`) and is
served then. Each request counts at most `window` chunks, so a device that asks for everything gets it
in windows and a slow device never holds up the others.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edgeml.fleet.artifact_store import ArtifactStore
from edgeml.protocol import ChunkLayout, ChunkRequest, artifact_chunks_topic, encode_chunk
from edgeml.transport import Transport

__all__ = ["ChunkServer"]

log = logging.getLogger(__name__)


@dataclass
class ChunkServer:
    store: ArtifactStore
    transport: Transport
    chunk_size: int
    clock: Callable[[], float] = time.monotonic
    window: int = 64
    dedupe_s: float = 1.0
    sent_chunks: int = 0
    requested_chunks: int = 0
    _pending: dict[str, set[int]] = field(default_factory=dict)
    _last_sent: dict[tuple[str, int], float] = field(default_factory=dict)

    def request(self, device_id: str, request: ChunkRequest) -> str | None:
        """Queue what `request` lacks for the next flush; return a rejection reason, or None."""
        if request.chunk_size != self.chunk_size:
            return "wrong_chunk_size"
        path = self.store.path(request.artifact)
        if not path.exists():
            return "unknown_artifact"
        count = ChunkLayout(request.artifact, path.stat().st_size, self.chunk_size).count
        wanted = [i for i in itertools.islice(request.indices(), self.window) if i < count]
        self._pending.setdefault(request.artifact, set()).update(wanted)
        self.requested_chunks += len(wanted)
        return None

    def flush(self) -> int:
        """Publish every chunk requested since the last flush, once each; return how many."""
        pending, self._pending = self._pending, {}
        sent, now = 0, self.clock()
        for artifact, indices in pending.items():
            indices = {i for i in indices if now - self._last_sent.get((artifact, i), -1e18) >= self.dedupe_s}
            path = self.store.path(artifact)
            layout = ChunkLayout(artifact, path.stat().st_size, self.chunk_size)
            topic = artifact_chunks_topic(artifact)
            with open(path, "rb") as f:
                for index in sorted(indices):
                    offset, length = layout.span(index)
                    f.seek(offset)
                    self.transport.publish(topic, encode_chunk(layout, index, f.read(length)), qos=1)
                    self._last_sent[(artifact, index)] = now
                    sent += 1
        self.sent_chunks += sent
        return sent

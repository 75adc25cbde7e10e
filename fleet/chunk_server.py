"""Chunk requests → artifact chunks published on the artifact's shared stream.

Requests are collected and served together by `flush()`: every chunk asked for by any device since the
last flush is published once, on the stream every fetching device is subscribed to (a device subscribes
before it asks), so one publish serves them all. Each request counts at most `window` chunks, so a device
that asks for everything gets it in windows (it asks again for what is still missing) and a slow device
never holds up the others.
"""

from __future__ import annotations

import itertools
import logging
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
    window: int = 64
    sent_chunks: int = 0
    requested_chunks: int = 0
    _pending: dict[str, set[int]] = field(default_factory=dict)

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
        sent = 0
        for artifact, indices in pending.items():
            path = self.store.path(artifact)
            layout = ChunkLayout(artifact, path.stat().st_size, self.chunk_size)
            topic = artifact_chunks_topic(artifact)
            with open(path, "rb") as f:
                for index in sorted(indices):
                    offset, length = layout.span(index)
                    f.seek(offset)
                    self.transport.publish(topic, encode_chunk(layout, index, f.read(length)), qos=1)
                    sent += 1
        self.sent_chunks += sent
        return sent

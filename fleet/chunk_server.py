"""Chunk requests → artifact chunks published on the artifact's shared stream, paced.

Every chunk any device asked for joins its artifact's *wanted* set; `flush()` publishes wanted chunks
in index order, once each, on the stream every fetching device is subscribed to (a device subscribes
before it asks), so one publish serves them all.

Flow control: the broker copies each publish to every device on the stream, so what it sends per
second is the stream's rate × the devices fetching. Each stream is paced (a token bucket) at
`egress_bytes_s / fetchers`, capped at `stream_bytes_s`: the broker's per-client queues stay short,
a device that cannot keep up loses chunks (the broker drops what overflows its queue) and asks for
them again, and the stream goes on at the pace of the rest — a slow device never stalls the others.
A device stops counting as a fetcher when its status leaves "downloading" (`forget`) or after
`fetcher_ttl_s` without a request.

A chunk published less than `dedupe_s` ago is not sent again: a device asking for it was almost always
subscribed already and has it on the way; one that joined too late asks again once its stream has been
quiet for a while and is served then. Each request counts at most `window` chunks, so a device that
asks for everything gets it in windows.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edgeml.fleet.artifact_store import ArtifactStore
from edgeml.protocol import ChunkLayout, ChunkRequest, artifact_chunks_topic, encode_chunk
from edgeml.transport import Transport

__all__ = ["DEFAULT_EGRESS_BYTES_S", "DEFAULT_STREAM_BYTES_S", "ChunkServer"]

log = logging.getLogger(__name__)

DEFAULT_EGRESS_BYTES_S = 100 * 2**20  # what the broker may send to all fetching devices together
DEFAULT_STREAM_BYTES_S = 16 * 2**20  # one stream's ceiling, however few devices fetch it


@dataclass
class _Stream:
    layout: ChunkLayout
    wanted: set[int] = field(default_factory=set)
    fetchers: dict[str, float] = field(default_factory=dict)  # device id → last request (monotonic)
    cursor: int = 0  # the next index to consider: passes go round in index order
    tokens: float = 0.0
    refilled: float = 0.0


@dataclass
class ChunkServer:
    store: ArtifactStore
    transport: Transport
    chunk_size: int
    clock: Callable[[], float] = time.monotonic  # the fleet's clock: dedupe
    window: int = 64
    dedupe_s: float = 1.0
    egress_bytes_s: float = DEFAULT_EGRESS_BYTES_S
    stream_bytes_s: float = DEFAULT_STREAM_BYTES_S
    fetcher_ttl_s: float = 60.0
    burst_s: float = 0.25  # a stream may catch up on this much time it sat idle, at most
    pace_clock: Callable[[], float] = time.monotonic  # real time: pacing, whatever the fleet's clock does
    sent_chunks: int = 0
    requested_chunks: int = 0
    _streams: dict[str, _Stream] = field(default_factory=dict)
    _last_sent: dict[tuple[str, int], float] = field(default_factory=dict)

    def request(self, device_id: str, request: ChunkRequest) -> str | None:
        """Add what `request` lacks to its stream's wanted set; return a rejection reason, or None."""
        if request.chunk_size != self.chunk_size:
            return "wrong_chunk_size"
        stream = self._streams.get(request.artifact)
        if stream is None:
            path = self.store.path(request.artifact)
            if not path.exists():
                return "unknown_artifact"
            layout = ChunkLayout(request.artifact, path.stat().st_size, self.chunk_size)
            stream = _Stream(layout, tokens=float(self.chunk_size), refilled=self.pace_clock())
            self._streams[request.artifact] = stream
        now = self.clock()
        wanted = [
            i
            for i in itertools.islice(request.indices(), self.window)
            if i < stream.layout.count and now - self._last_sent.get((request.artifact, i), -1e18) >= self.dedupe_s
        ]
        stream.wanted.update(wanted)
        stream.fetchers[device_id] = self.pace_clock()
        self.requested_chunks += len(wanted)
        return None

    def forget(self, device_id: str) -> None:
        """`device_id` is not fetching any more (its status left "downloading"): its share goes to the rest."""
        for stream in self._streams.values():
            stream.fetchers.pop(device_id, None)

    @property
    def pending(self) -> int:
        """Chunks wanted and not yet published: while there are any, call `flush()` often."""
        return sum(len(s.wanted) for s in self._streams.values())

    def rate(self, artifact: str) -> float:
        """Bytes per second the artifact's stream may go at now."""
        stream = self._streams.get(artifact)
        fetchers = len(stream.fetchers) if stream else 1
        return min(self.stream_bytes_s, self.egress_bytes_s / max(1, fetchers))

    def flush(self) -> int:
        """Publish what each stream's pace allows of its wanted chunks, once each; return how many."""
        sent, now, real = 0, self.clock(), self.pace_clock()
        for artifact, stream in list(self._streams.items()):
            self._expire(stream, real)
            if not stream.wanted:
                if not stream.fetchers:
                    del self._streams[artifact]
                continue
            rate = self.rate(artifact)
            cap = max(self.chunk_size, rate * self.burst_s)
            stream.tokens = cap if math.isinf(rate) else min(cap, stream.tokens + (real - stream.refilled) * rate)
            stream.refilled = real
            sent += self._publish(artifact, stream, now)
        self.sent_chunks += sent
        return sent

    def _publish(self, artifact: str, stream: _Stream, now: float) -> int:
        layout, sent = stream.layout, 0
        topic = artifact_chunks_topic(artifact)
        # NOTE: first sends before re-sends, each from the cursor on, then wrapping: a re-send reaches every
        # device on the stream, so it waits until the chunks nobody has yet went out (and most devices finished)
        order = sorted(stream.wanted, key=lambda i: ((artifact, i) in self._last_sent, i < stream.cursor, i))
        if stream.tokens < layout.span(order[0])[1]:
            return 0  # NOTE: flush runs every few ms while chunks wait: no file open until one may go
        with open(self.store.path(artifact), "rb") as f:
            for index in order:
                offset, length = layout.span(index)
                if stream.tokens < length:
                    break
                f.seek(offset)
                self.transport.publish(topic, encode_chunk(layout, index, f.read(length)), qos=1)
                stream.tokens -= length
                stream.wanted.discard(index)
                stream.cursor = index + 1
                self._last_sent[(artifact, index)] = now
                sent += 1
        return sent

    def _expire(self, stream: _Stream, real: float) -> None:
        for device_id, seen in list(stream.fetchers.items()):
            if real - seen > self.fetcher_ttl_s:
                del stream.fetchers[device_id]

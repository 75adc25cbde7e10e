"""Chunk requests → artifact chunks published on the artifact's shared stream, paced.

Every chunk any device asked for joins its artifact's *wanted* set; `flush()` publishes wanted chunks
in index order, once each, on the stream every fetching device is subscribed to (a device subscribes
before it asks), so one publish serves them all.

Flow control: the broker copies each publish to every device on the stream, so what it sends per
second is the stream's rate × the devices fetching. Each stream is paced (a token bucket) at most at
`egress_bytes_s / fetchers`, capped at `stream_bytes_s`. A device stops counting as a fetcher when its
status leaves "downloading" (`forget`) or after `fetcher_ttl_s` without a request.

Congestion slows a stream down (AIMD, as TCP does): a device asking for a chunk that was published to it
(while it fetched) more than `late_s` ago lost it, or has it stuck in a queue — either way the stream runs
ahead of it. When more than `congested_share` of the fetching devices say so within `adjust_s`, the
stream's pace halves (down to 1/16 of its ceiling); otherwise it climbs back by 1/8 per `adjust_s`. A few
slow devices lose chunks and ask again; they do not slow the others down.

Requests clock the stream: first publishes go no further than what all but the slowest 2 % of the
fetching devices asked for (a device asks for the next chunks as it receives, as TCP acknowledges), so the
stream runs at most a request window ahead of them and their broker queues never hold more than that. The
devices a desired state was just sent to count as having asked for nothing yet, for up to `join_wait_s`:
a wave's devices start together instead of the first one running the stream ahead of the rest.

Re-sends wait for company: a chunk already published once goes out again when no first publish is
wanted and its askers are at least `resend_share` of themselves plus the devices still busy with their
first pass (those asking for no re-send), or its first ask is `resend_wait_s` old. A re-send reaches
every device on the stream; this way it goes when the devices that kept up have finished and left, or only
wait for their own gaps, so it reaches mostly devices that missed the chunk (a disconnect, a late start) —
as a data carousel serves late joiners. A device asking for the first time for a chunk published while it
fetched has it on the way, behind a queue: that ask is not a re-send.

A chunk published less than `dedupe_s` (3 s) ago is not sent again: a device asking for it was almost
always subscribed already and has it on the way, if behind a queue. Each request counts at most `window`
chunks, so a device that asks for everything gets it in windows.
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
    joined: dict[str, float] = field(default_factory=dict)  # device id → when it became a fetcher (fleet clock)
    lost: dict[str, set[int]] = field(default_factory=dict)  # device id → chunks it lost, each counted once
    sent_once: set[int] = field(default_factory=set)
    asks: dict[int, tuple[float, set[str]]] = field(default_factory=dict)  # re-send → (first ask, devices)
    asked: dict[str, tuple[int, float]] = field(default_factory=dict)  # device → (highest index asked, when)
    cursor: int = 0  # the next index to consider: passes go round in index order
    tokens: float = 0.0
    refilled: float = 0.0
    share: float = 1.0  # of the ceiling (`ChunkServer.rate`) the stream goes at: less after losses
    lossy: set[str] = field(default_factory=set)  # devices that lost a chunk since `adjusted`
    adjusted: float = 0.0


@dataclass
class ChunkServer:
    store: ArtifactStore
    transport: Transport
    chunk_size: int
    clock: Callable[[], float] = time.monotonic  # the fleet's clock: dedupe
    window: int = 64
    dedupe_s: float = 3.0  # a chunk asked for within this of its publish is on its way: not sent again
    egress_bytes_s: float = DEFAULT_EGRESS_BYTES_S
    stream_bytes_s: float = DEFAULT_STREAM_BYTES_S
    fetcher_ttl_s: float = 60.0
    burst_s: float = 0.25  # a stream may catch up on this much time it sat idle, at most
    adjust_s: float = 1.0  # how often a stream's pace follows its losses
    late_s: float = 3.0  # a chunk published this long ago and asked for again was lost (or is stuck)
    congested_share: float = 0.1  # of the fetching devices losing chunks: the pace halves
    resend_share: float = 0.5  # askers of a chunk, of themselves plus the devices still busy: it is re-sent
    resend_wait_s: float = 30.0  # or when its first ask is this old
    lead_quantile: float = 0.02  # first publishes wait for all but the slowest 2 % of the devices fetching
    lead_stale_s: float = 5.0  # a device that asked for nothing further for this long does not hold a stream
    join_wait_s: float = 5.0  # a device sent a desired state holds its artifact's stream this long, until it asks
    pace_clock: Callable[[], float] = time.monotonic  # real time: pacing, whatever the fleet's clock does
    sent_chunks: int = 0
    resent_chunks: int = 0  # of sent_chunks, those published before on their stream
    lost_chunks: int = 0  # chunks devices asked for again after they were published to them
    requested_chunks: int = 0
    _streams: dict[str, _Stream] = field(default_factory=dict)
    _last_sent: dict[tuple[str, int], float] = field(default_factory=dict)
    _expected: dict[str, dict[str, float]] = field(default_factory=dict)  # artifact → device → desired sent at

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
            real = self.pace_clock()
            stream = _Stream(layout, tokens=float(self.chunk_size), refilled=real, adjusted=real)
            self._streams[request.artifact] = stream
        now = self.clock()
        joined = stream.joined.setdefault(device_id, now)
        before = stream.asked.get(device_id, (-1, 0.0))[0]  # what it asked for up to now
        wanted, highest = [], -1
        for i in itertools.islice(request.indices(), self.window):
            highest = i
            sent = self._last_sent.get((request.artifact, i), -math.inf)
            if i >= stream.layout.count or now - sent < self.dedupe_s:
                continue
            if i in stream.sent_once and sent >= joined and i > before:
                continue  # NOTE: published while it fetched and asked for the first time: on its way, behind a queue
            wanted.append(i)
            if i in stream.sent_once:
                stream.asks.setdefault(i, (now, set()))[1].add(device_id)
            if sent >= joined and now - sent >= self.late_s and i not in stream.lost.setdefault(device_id, set()):
                stream.lost[device_id].add(i)  # NOTE: published while it fetched, asked for again: lost
                stream.lossy.add(device_id)
                self.lost_chunks += 1
        stream.wanted.update(wanted)
        stream.fetchers[device_id] = real = self.pace_clock()
        if highest > stream.asked.get(device_id, (-1, 0.0))[0]:
            stream.asked[device_id] = (highest, real)
        self.requested_chunks += len(wanted)
        return None

    def expect(self, artifact: str, device_id: str) -> None:
        """`device_id` was just sent a desired state for `artifact`: the stream's first chunks wait for it (up to
        `join_wait_s`), as a wave's devices ask within a few seconds of each other and all need them."""
        expected = self._expected.setdefault(artifact, {})
        expected[device_id] = self.pace_clock()
        if len(expected) > 100_000:  # NOTE: bounded; entries are only useful for join_wait_s anyway
            del expected[next(iter(expected))]

    def forget(self, device_id: str) -> None:
        """`device_id` is not fetching any more (its status left "downloading"): its share goes to the rest."""
        for stream in self._streams.values():
            stream.fetchers.pop(device_id, None)
            stream.joined.pop(device_id, None)  # NOTE: what it misses until it asks again is not a loss
            stream.lost.pop(device_id, None)
            stream.asked.pop(device_id, None)
            for _, devices in stream.asks.values():
                devices.discard(device_id)
        for expected in self._expected.values():
            expected.pop(device_id, None)  # NOTE: it has the artifact, or gave up: no reason to hold a stream for it

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
            rate = self._follow_losses(stream, self.rate(artifact), real)
            cap = max(self.chunk_size, rate * self.burst_s)
            stream.tokens = cap if math.isinf(rate) else min(cap, stream.tokens + (real - stream.refilled) * rate)
            stream.refilled = real
            sent += self._publish(artifact, stream, now)
        self.sent_chunks += sent
        return sent

    def pace(self, artifact: str) -> float:
        """Bytes per second the artifact's stream goes at now: its ceiling (`rate`), less after losses."""
        stream = self._streams.get(artifact)
        return self.rate(artifact) * (stream.share if stream else 1.0)

    def _follow_losses(self, stream: _Stream, ceiling: float, real: float) -> float:
        """The stream's pace after this `adjust_s`: halved if its devices lost too much, else a step up."""
        if real - stream.adjusted >= self.adjust_s:
            lossy = len(stream.lossy & stream.fetchers.keys())
            if lossy > self.congested_share * len(stream.fetchers):
                stream.share = max(1 / 16, stream.share / 2)
                log.info("stream %s…: %d of %d devices fall behind; pace %.2f MiB/s", stream.layout.sha256[:12],
                         lossy, len(stream.fetchers), ceiling * stream.share / 2**20)  # fmt: skip
            else:
                stream.share = min(1.0, stream.share + 1 / 8)
            stream.lossy.clear()
            stream.adjusted = real
        return ceiling * stream.share

    def _order(self, stream: _Stream, now: float) -> list[int]:
        """Wanted first publishes the devices are ready for, from the cursor on, then wrapping; else the
        re-sends that may go."""
        lead = self._lead(stream)
        first = [i for i in stream.wanted if i not in stream.sent_once and i <= lead]
        if not first:
            waiting = set().union(*(devices for _, devices in stream.asks.values())) & stream.fetchers.keys()
            busy = len(stream.fetchers) - len(waiting)
            first = [i for i in stream.wanted if i in stream.sent_once and self._resend_due(stream, i, now, busy)]
        return sorted(first, key=lambda i: (i < stream.cursor, i))

    def _lead(self, stream: _Stream) -> float:
        """The highest index a first publish may have: what all but the slowest `lead_quantile` of the devices
        asked for. A device asks for the next chunks as it receives, so its requests clock the stream (as TCP
        acknowledgements do): the stream runs at most a request window ahead of them, and their broker queues
        hold at most that much."""
        real = self.pace_clock()
        ready = [i for i, at in stream.asked.values() if real - at <= self.lead_stale_s]
        expected = self._expected.get(stream.layout.sha256, {})
        ready += [-1 for d, at in expected.items() if d not in stream.asked and real - at <= self.join_wait_s]
        ready.sort()
        return ready[int(len(ready) * self.lead_quantile)] if ready else math.inf

    def _resend_due(self, stream: _Stream, index: int, now: float, busy: int) -> bool:
        """Whether a re-send of `index` would reach mostly devices that need it: its askers are at least
        `resend_share` of themselves plus the `busy` devices, those still on their first pass (asking for
        no re-send); devices that only wait for re-sends of their own gaps lose nothing by receiving it."""
        asked, devices = stream.asks.get(index, (now, set()))
        askers = sum(1 for d in devices if d in stream.fetchers)
        return askers >= self.resend_share * max(1, askers + busy) or now - asked >= self.resend_wait_s

    def _publish(self, artifact: str, stream: _Stream, now: float) -> int:
        layout, sent = stream.layout, 0
        topic = artifact_chunks_topic(artifact)
        if stream.tokens < min(layout.span(0)[1], layout.span(layout.count - 1)[1]):
            return 0  # NOTE: flush runs every few ms while chunks wait: no work until one may go
        order = self._order(stream, now)
        if not order or stream.tokens < layout.span(order[0])[1]:
            return 0
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
                self.resent_chunks += index in stream.sent_once
                stream.sent_once.add(index)
                stream.asks.pop(index, None)
                sent += 1
        return sent

    def _expire(self, stream: _Stream, real: float) -> None:
        for device_id, seen in list(stream.fetchers.items()):
            if real - seen > self.fetcher_ttl_s:
                del stream.fetchers[device_id]
                stream.joined.pop(device_id, None)
                stream.lost.pop(device_id, None)
                stream.asked.pop(device_id, None)
                for _, devices in stream.asks.values():
                    devices.discard(device_id)

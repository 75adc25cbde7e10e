"""The chunk server's flow control: paced streams, the rate shared by fetching devices, one pass in index
order, re-requests of just-sent chunks ignored. Real time is replaced by a stepped clock."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from edgeml.fleet.chunk_server import ChunkServer
from edgeml.protocol import ChunkRequest, decode_chunk

CHUNK = 1024


class Store:
    def __init__(self, folder: Path, size: int) -> None:
        data = os.urandom(size)
        self.sha = hashlib.sha256(data).hexdigest()
        self.file = folder / self.sha
        self.file.write_bytes(data)

    def path(self, sha: str) -> Path:
        return self.file if sha == self.sha else self.file.with_name("missing")


class Recorder:
    def __init__(self) -> None:
        self.sent: list[int] = []

    def publish(self, topic, payload, qos=1, retain=False) -> None:
        self.sent.append(decode_chunk(payload).index)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def server(tmp_path, size=100 * CHUNK, **kw):
    store, out, clock = Store(tmp_path, size), Recorder(), Clock()
    chunks = ChunkServer(store, out, CHUNK, clock=clock, pace_clock=clock, **kw)
    return chunks, store, out, clock


def ask(chunks, store, device, indices):
    assert chunks.request(device, ChunkRequest.for_indices(store.sha, CHUNK, indices)) is None


def run_for(chunks, clock, seconds, step=0.01):
    for _ in range(round(seconds / step)):
        clock.now += step
        chunks.flush()


def test_a_stream_goes_at_its_rate_not_all_at_once(tmp_path):
    chunks, store, out, clock = server(tmp_path, egress_bytes_s=10 * CHUNK, stream_bytes_s=10 * CHUNK)
    ask(chunks, store, "d1", range(64))
    chunks.flush()
    assert len(out.sent) == 1  # a new stream starts with one chunk's worth
    run_for(chunks, clock, 2.0)
    assert 19 <= len(out.sent) <= 22
    assert out.sent == sorted(out.sent) and len(set(out.sent)) == len(out.sent)
    assert chunks.pending == 64 - len(out.sent)


def test_the_egress_budget_is_shared_by_the_devices_fetching(tmp_path):
    chunks, store, out, clock = server(tmp_path, egress_bytes_s=40 * CHUNK, stream_bytes_s=1000 * CHUNK)
    for d in ("d1", "d2", "d3", "d4"):
        ask(chunks, store, d, range(64))
    assert chunks.rate(store.sha) == 10 * CHUNK
    run_for(chunks, clock, 2.0)
    assert 19 <= len(out.sent) <= 22  # 10 chunks/s to each of 4 devices: 40 chunks/s through the broker
    for d in ("d2", "d3", "d4"):
        chunks.forget(d)  # their status left "downloading"
    assert chunks.rate(store.sha) == 40 * CHUNK
    before = len(out.sent)
    run_for(chunks, clock, 0.5)
    assert 18 <= len(out.sent) - before <= 22


def test_a_silent_fetcher_stops_counting(tmp_path):
    chunks, store, _, clock = server(tmp_path, egress_bytes_s=40 * CHUNK, stream_bytes_s=1000 * CHUNK)
    ask(chunks, store, "d1", range(64))
    ask(chunks, store, "d2", range(64))
    clock.now += chunks.fetcher_ttl_s + 1
    ask(chunks, store, "d1", range(64, 100))
    chunks.flush()
    assert chunks.rate(store.sha) == 40 * CHUNK


def test_one_pass_in_index_order_then_wrap_for_late_requests(tmp_path):
    chunks, store, out, clock = server(tmp_path, egress_bytes_s=10 * CHUNK, stream_bytes_s=10 * CHUNK)
    ask(chunks, store, "d1", range(10, 20))
    run_for(chunks, clock, 0.35)
    ask(chunks, store, "late", [0, 1, 15, 19])  # 15 may be sent already; 0 and 1 come after the pass
    run_for(chunks, clock, 2.0)
    assert out.sent[-2:] == [0, 1]
    assert out.sent.count(19) == 1  # asked twice before it went out: sent once


def test_a_chunk_sent_just_now_is_not_sent_again(tmp_path):
    chunks, store, out, clock = server(tmp_path, egress_bytes_s=1e9, stream_bytes_s=1e9)
    ask(chunks, store, "d1", range(4))
    run_for(chunks, clock, 0.1)
    assert sorted(out.sent) == [0, 1, 2, 3]
    ask(chunks, store, "d2", range(4))  # within dedupe_s: on its way to d2 already
    run_for(chunks, clock, 0.1)
    assert len(out.sent) == 4
    clock.now += chunks.dedupe_s
    ask(chunks, store, "d2", [2])  # still missing later: it joined too late, so it is served
    run_for(chunks, clock, 0.1)
    assert out.sent[-1] == 2


def test_requests_that_cannot_be_served_are_refused(tmp_path):
    chunks, store, out, _ = server(tmp_path)
    assert chunks.request("d1", ChunkRequest.for_indices(store.sha, CHUNK * 2, [0])) == "wrong_chunk_size"
    assert chunks.request("d1", ChunkRequest.for_indices("ab" * 32, CHUNK, [0])) == "unknown_artifact"
    assert chunks.flush() == 0 and out.sent == []

"""Windowed chunk requests: at most `window` outstanding, refilled as chunks land, asked again after a quiet
period; damaged chunks are dropped and re-fetched; progress survives a new Download object."""

from __future__ import annotations

import hashlib

import pytest

from edgeml.device_agent.update.downloader import Download
from edgeml.protocol import ArtifactRef, ChunkLayout, DesiredState, ProtocolError, iter_chunks

DATA = bytes(range(256)) * 400  # 102 400 bytes: 100 chunks of 1 KiB


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def _desired(data=DATA, chunk=1024):
    layout = ChunkLayout.of(data, chunk)
    ref = ArtifactRef("m", "1.0.0", 1, layout.sha256, layout.size, chunk, layout.count, "cpu-ort")
    return DesiredState("cam-1", ref, "r", 1, 0, 10), layout


def _download(tmp_path, clock, window=32, data=DATA):
    desired, layout = _desired(data)
    requests = []
    job = Download(desired, tmp_path, requests.append, window=window, quiet_s=2.0, clock=clock)
    return job, layout, requests


def _indices(requests):
    return [i for r in requests for i in r.indices()]


def test_requests_stay_within_the_window_and_refill(tmp_path):
    clock = Clock()
    job, layout, requests = _download(tmp_path, clock)
    job.request_more()
    assert _indices(requests) == list(range(32)) and job.outstanding == 32
    chunks = list(iter_chunks(DATA, layout))
    for i in range(15):
        assert job.add(chunks[i]) == "stored"
    assert len(requests) == 1  # 17 still outstanding: more than half the window
    job.add(chunks[15])
    assert _indices(requests[1:]) == list(range(32, 48)) and job.outstanding == 32
    for message in chunks:  # the rest arrive in any order, some twice
        job.add(message)
    assert job.complete and job.path.read_bytes() == DATA


def test_quiet_period_asks_again_for_what_is_outstanding(tmp_path):
    clock = Clock()
    job, layout, requests = _download(tmp_path, clock, window=4)
    job.request_more()
    chunks = list(iter_chunks(DATA, layout))
    job.add(chunks[1])
    clock.now = 1.9
    job.tick()
    assert len(requests) == 1
    clock.now = 4.0
    job.tick()
    assert _indices(requests[1:]) == [0, 2, 3, 4]  # outstanding again, then the window filled
    job.request_again()  # as after a reconnect
    assert _indices(requests[2:]) == [0, 2, 3, 4]


def test_damaged_chunks_are_counted_dropped_and_refetched(tmp_path):
    clock = Clock()
    job, layout, requests = _download(tmp_path, clock, window=4)
    job.request_more()
    good = next(iter_chunks(DATA, layout, [0]))
    flipped = good[:-1] + bytes([good[-1] ^ 1])
    assert job.add(flipped) is None and job.add(good[:50]) is None
    assert dict(job.rejected) == {"bad_checksum": 1, "truncated": 1}
    clock.now = 3.0
    job.tick()
    assert 0 in _indices(requests[1:])
    assert job.add(good) == "stored"


def test_a_new_download_object_resumes_from_the_checkpoint(tmp_path):
    clock = Clock()
    job, layout, _ = _download(tmp_path, clock)
    chunks = list(iter_chunks(DATA, layout))
    for message in chunks[:40]:
        job.add(message)
    job.assembler.checkpoint()
    resumed, _, requests = _download(tmp_path, clock)
    assert resumed.received == 40
    resumed.request_more()
    assert _indices(requests) == list(range(40, 72))


def test_a_file_that_does_not_hash_right_starts_over(tmp_path):
    clock = Clock()
    wrong = DATA[:-1] + b"\x00"
    desired, layout = _desired()
    job = Download(desired, tmp_path, lambda r: None, clock=clock)
    forged = ChunkLayout(layout.sha256, layout.size, layout.chunk_size)  # right name, wrong bytes
    messages = list(iter_chunks(wrong, forged))
    for message in messages[:-1]:
        job.add(message)
    with pytest.raises(ProtocolError, match="assembled artifact") as err:
        job.add(messages[-1])
    assert err.value.code == "hash_mismatch" and job.received == 0 and not job.complete
    assert hashlib.sha256(wrong).hexdigest() != layout.sha256

"""The offline spool: FIFO across restarts, a byte cap that drops the oldest first, torn records skipped."""

from __future__ import annotations

from edgeml.device_agent.messaging.spool import Spool


def _fill(spool, n, size=100):
    for i in range(n):
        spool.append(f"t/{i}", bytes([i]) * size)


def test_records_replay_in_order_and_survive_a_restart(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=10_000)
    _fill(spool, 5)
    reopened = Spool(tmp_path / "spool", max_bytes=10_000)
    reopened.append("t/5", b"\x05" * 100)
    got = []
    assert reopened.replay(lambda topic, payload: got.append((topic, payload[0]))) == 6
    assert got == [(f"t/{i}", i) for i in range(6)]
    assert len(reopened) == 0 and reopened.size_bytes == 0 and not list((tmp_path / "spool").iterdir())


def test_past_the_cap_the_oldest_go_first(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=1000)  # each record is 12 + 3 + 100 bytes
    _fill(spool, 20)
    assert spool.size_bytes <= 1000 and len(spool) == 8 and spool.dropped == 12
    assert [r.topic for r in spool.records()] == [f"t/{i}" for i in range(12, 20)]
    spool.append("huge", b"x" * 2000)  # larger than the whole spool: refused, nothing else lost
    assert len(spool) == 8 and spool.dropped == 13


def test_a_failing_send_keeps_the_rest(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=800)  # segments of 100 bytes: one record each
    _fill(spool, 4, size=50)
    sent = []

    def send(topic, payload):
        if len(sent) == 2:
            raise OSError("offline")
        sent.append(topic)

    assert spool.replay(send) == 2
    assert [r.topic for r in spool.records()] == ["t/2", "t/3"]


def test_a_torn_tail_is_skipped_and_never_appended_to(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=100_000)
    _fill(spool, 3)
    segment = next((tmp_path / "spool").iterdir())
    segment.write_bytes(segment.read_bytes()[:-40])  # a power cut in the middle of the last record
    reopened = Spool(tmp_path / "spool", max_bytes=100_000)
    reopened.append("t/new", b"n")
    assert [r.topic for r in reopened.records()] == ["t/0", "t/1", "t/new"]
    assert Spool.usage(tmp_path / "spool")[0] == 3

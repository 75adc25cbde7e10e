"""Warnings about rejected MQTT messages: one per reason per 10 s with a count of what was held back, the
sender's topic and reason cut short and escaped."""

from __future__ import annotations

import logging

from edgeml.fleet.rejection_log import RejectionLog, clip


def test_a_flood_is_counted_and_warned_about_once_per_reason_per_interval(caplog):
    now = [0.0]
    rejections = RejectionLog(logging.getLogger("test.rejections"), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.rejections"):
        for _ in range(1000):
            rejections.rejected("malformed", f"edgeml/v1/devices/{'x' * 10_000}/telemetry", "not JSON\n" * 500)
            rejections.rejected("bad_device_id", "edgeml/v1/devices/\x1b[31mred/hello", "bad id")
        now[0] = 11.0
        rejections.rejected("malformed", "t", "again")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines  # malformed, bad_device_id, malformed 11 s later + what was held back
    assert lines[-1] == "… 1,998 more rejected message(s) since the last warning: malformed 999, bad_device_id 999"
    assert max(map(len, lines)) < 400 and "\x1b" not in "".join(lines) and "\n" not in "".join(lines)
    assert rejections.total == {"malformed": 1001, "bad_device_id": 1000}


def test_clip_escapes_and_says_how_much_it_cut():
    assert clip("abc", 10) == "'abc'"
    assert clip("a" * 50, 10) == "'aaaaaaaaa…(+42 chars)"
    assert clip("\udcff\n", 20) == "'\\udcff\\n'"

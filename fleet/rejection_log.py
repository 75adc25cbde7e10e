"""Warnings about rejected MQTT messages: counted, rate-limited per reason, and with what the sender chose
(the topic, the reason that may quote the payload) truncated and escaped, so a flood of bad messages can
neither fill the log nor write into it what the attacker wants.

    rejected message on 'edgeml/v1/devices/cam-01/telemetry': [malformed] not JSON (…)
    … 4,812 more rejected message(s) since the last warning: malformed 4,800, topic_mismatch 12

The counts by reason are also in the database (`edgeml fleet stats`, GET /v1/stats).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

__all__ = ["RejectionLog", "clip"]

WARN_EVERY_S = 10.0  # at most one warning per reason per this many seconds
TOPIC_CHARS, REASON_CHARS = 120, 200


def clip(text: str, limit: int) -> str:
    """`text` as a repr (escapes control characters and bad Unicode), cut to about `limit` characters."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[:limit]}…(+{len(shown) - limit} chars)"


class RejectionLog:
    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.clock = logger, clock
        self.total: Counter[str] = Counter()
        self._quiet: Counter[str] = Counter()  # rejected since the last warning, by reason
        self._warned_at: dict[str, float] = {}

    def rejected(self, code: str, topic: str, reason: str) -> None:
        """Count one rejected message; warn unless this reason was warned about in the last WARN_EVERY_S."""
        self.total[code] += 1
        now = self.clock()
        if now - self._warned_at.get(code, -WARN_EVERY_S) < WARN_EVERY_S:
            self._quiet[code] += 1
            return
        self._warned_at[code] = now
        self.log.warning("rejected message on %s: [%s] %s", clip(topic, TOPIC_CHARS), code, clip(reason, REASON_CHARS))
        if self._quiet:
            counts = ", ".join(f"{c} {n:,}" for c, n in self._quiet.most_common())
            self.log.warning("… %s more rejected message(s) since the last warning: %s", f"{self._quiet.total():,}",
                             counts)  # fmt: skip
            self._quiet.clear()

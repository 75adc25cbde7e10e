"""What happened on the device → numbered `edgeml/v1/event` messages in the outbox (spooled while offline).

The installer reports the lifecycle state it entered; `INSTALLER_EVENTS` is the one table that turns those
into the protocol's past-tense kinds (`downloaded`, `verified`, `installed`, `committed`, `rolled_back`,
`refused`, …), each with the state it happened in as `step` and the update it belongs to. The agent's own
kinds (download_started, download_failed, chunk_rejected, desired_rejected, drift, …) are reported
directly; docs/agent.md lists them all.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeml.device_agent.messaging.outbox import Outbox
from edgeml.device_agent.messaging.sequence_counter import SequenceCounter
from edgeml.errors import EdgemlError
from edgeml.protocol import Event, encode, events_topic

__all__ = ["INSTALLER_EVENTS", "EventContext", "EventReporter"]

log = logging.getLogger(__name__)

# state entered (or installer event) → (protocol event kind, ok); None: not reported (the update worker reports
# download_started itself, with the chunk count)
INSTALLER_EVENTS: dict[str, tuple[str, bool] | None] = {
    "idle": None,
    "accepted": None,
    "downloading": None,
    "verifying": ("downloaded", True),
    "installing": ("verified", True),
    "self_test": ("installed", True),
    "committed": ("committed", True),
    "rolled_back": ("rolled_back", False),
    "refused": ("refused", False),
    "state_rebuilt": ("state_rebuilt", False),
    "active_fallback": ("active_fallback", False),
}
_TOKEN = re.compile(r"[a-z][a-z0-9_]{0,31}")
_MAX_REASON = 1024


@dataclass(frozen=True)
class EventContext:
    """Which update an event belongs to (all None outside an update)."""

    artifact: str | None = None
    release: int | None = None
    rollout_id: str | None = None


class EventReporter:
    def __init__(
        self, device_id: str, outbox: Outbox, counter: SequenceCounter, clock: Callable[[], float] = time.time
    ) -> None:
        self.topic = events_topic(device_id)
        self.outbox = outbox
        self.counter = counter
        self.clock = clock

    def report(self, kind: str, step: str, ok: bool, reason: str = "", context: EventContext | None = None) -> None:
        """Queue one event (published now, or spooled until the broker is back); never raises."""
        ctx = context or EventContext()
        try:
            event = Event(
                kind, _token(step), ok, self.counter.next(), int(self.clock()), reason[:_MAX_REASON],
                ctx.artifact, ctx.release, ctx.rollout_id,
            )  # fmt: skip
            self.outbox.send(self.topic, encode(event))
        except (EdgemlError, OSError) as exc:
            log.error("could not report event %s (%s): %s", kind, reason, exc)
            return
        log.info("event %s step=%s ok=%s %s", kind, step, ok, reason, extra={"event": kind, "ok": ok})

    def installer_event(self, kind: str, **fields: Any) -> None:
        """The Installer's on_event callback: forward the states the fleet cares about."""
        mapped = INSTALLER_EVENTS.get(kind, (kind, False) if _TOKEN.fullmatch(kind) else None)
        if mapped is None:
            return
        name, ok = mapped
        code = fields.get("code")
        reason = f"[{code}] {fields.get('reason', '')}" if code and not ok else str(fields.get("reason") or "")
        context = EventContext(fields.get("artifact"), fields.get("release"), fields.get("rollout_id"))
        self.report(name, str(fields.get("previous") or kind), ok, reason, context)


def _token(step: str) -> str:
    return step if _TOKEN.fullmatch(step) else "idle"

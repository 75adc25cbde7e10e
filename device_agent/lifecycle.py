"""The update lifecycle as one transition table: (state, event) → next state.

    idle ─start→ downloading ─fetched→ verifying ─verified→ installing ─copied→ self_test ─passed→ committed
                      └──────────────────┴──────────failed───────┴──────────────────┴──→ rolled_back
    committed ─reset→ idle        rolled_back ─reset→ idle

The installer persists every new state *before* it runs that state's step (Mender's state machine), so
after a power cut `resume()` knows exactly which step was under way. Anything not in the table is a bug
and raises `LifecycleError`.
"""

from __future__ import annotations

from enum import Enum

from edgeml.errors import EdgemlError

__all__ = ["IN_PROGRESS", "TRANSITIONS", "Event", "LifecycleError", "State", "next_state"]


class State(str, Enum):
    IDLE = "idle"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    INSTALLING = "installing"
    SELF_TEST = "self_test"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"


class Event(str, Enum):
    START = "start"  # an update was accepted for installation
    FETCHED = "fetched"  # the artifact is on the device
    VERIFIED = "verified"  # signature, files, schema, target, runtime and release all check out
    COPIED = "copied"  # the artifact sits, re-verified, in the inactive slot
    PASSED = "passed"  # the candidate loaded and reproduced its self-test outputs
    FAILED = "failed"  # any step failed, or resume() found the step interrupted
    RESET = "reset"  # the last update is finished; ready for the next one


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.IDLE, Event.START): State.DOWNLOADING,
    (State.DOWNLOADING, Event.FETCHED): State.VERIFYING,
    (State.VERIFYING, Event.VERIFIED): State.INSTALLING,
    (State.INSTALLING, Event.COPIED): State.SELF_TEST,
    (State.SELF_TEST, Event.PASSED): State.COMMITTED,
    (State.DOWNLOADING, Event.FAILED): State.ROLLED_BACK,
    (State.VERIFYING, Event.FAILED): State.ROLLED_BACK,
    (State.INSTALLING, Event.FAILED): State.ROLLED_BACK,
    (State.SELF_TEST, Event.FAILED): State.ROLLED_BACK,
    (State.COMMITTED, Event.RESET): State.IDLE,
    (State.ROLLED_BACK, Event.RESET): State.IDLE,
}

# States in which an update is under way: after a restart, resume() must finish or undo it.
IN_PROGRESS = frozenset({State.DOWNLOADING, State.VERIFYING, State.INSTALLING, State.SELF_TEST})


class LifecycleError(EdgemlError):
    """An event arrived that the lifecycle table does not allow in the current state."""


def next_state(state: State, event: Event) -> State:
    """The state `event` leads to from `state`; LifecycleError if the table has no such edge."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s is state)
        raise LifecycleError(
            f"the update lifecycle has no transition from {state.value!r} on event {event.value!r}",
            f"events allowed in {state.value!r}: {', '.join(allowed) or 'none'}"
            + (" (an update is in progress: call Installer.resume() first)" if state in IN_PROGRESS else ""),
        ) from None

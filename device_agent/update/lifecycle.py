"""The device's update lifecycle as one transition table: (state, event) → next state.

    idle ─accept→ accepted ─fetch→ downloading ─fetched→ verifying ─verified→ installing ─copied→ self_test
                     │ ─fetched (local file, or the other slot holds it)→ verifying          ─passed→ committed
                     └─already_active (it serves already)──────────────────────────────────────────→ committed
    accepted, downloading, verifying ─failed→ refused        (nothing on the device changed)
    installing, self_test ───────────failed→ rolled_back    (the candidate slot is wiped; the active one never moved)
    committed, rolled_back, refused ─accept→ accepted        (the next update)
    downloading ─accept→ accepted                             (a newer desired state replaces the one being fetched)

`accepted` is a signed desired state (or a local artifact) the device took on: its step decides where the
artifact comes from (wrong target: refused; already serving: committed; still in the other slot: verifying a
copy of it; else downloading). The installer persists every new state *before* it runs that state's step
(Mender's state machine), so after a power cut it knows which step was under way: `RESUMABLE` states are
carried on by the update worker (they wait on the fleet), the others are ended as `interrupted`. Anything
not in the table is a bug and raises `LifecycleError`.
"""

from __future__ import annotations

from enum import Enum

from edgeml.errors import EdgemlError

__all__ = ["FINAL", "IN_PROGRESS", "RESUMABLE", "TRANSITIONS", "Event", "LifecycleError", "State", "next_state"]


class State(str, Enum):
    IDLE = "idle"  # a new device: no update ever accepted
    ACCEPTED = "accepted"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    INSTALLING = "installing"
    SELF_TEST = "self_test"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"


class Event(str, Enum):
    ACCEPT = "accept"  # a desired state passed the guard, or install() was called with a local artifact
    FETCH = "fetch"  # the artifact must be downloaded
    FETCHED = "fetched"  # the artifact file is on the device (downloaded, local, or copied from the other slot)
    ALREADY_ACTIVE = "already_active"  # the desired artifact is the one serving: nothing to install
    VERIFIED = "verified"  # signature, files, schema, target, runtime and release all check out
    COPIED = "copied"  # the artifact sits, re-verified, in the inactive slot
    PASSED = "passed"  # the candidate loaded and reproduced its self-test outputs
    FAILED = "failed"  # a step failed, or the device restarted in the middle of one


_STARTS = (State.IDLE, State.COMMITTED, State.ROLLED_BACK, State.REFUSED, State.DOWNLOADING)

TRANSITIONS: dict[tuple[State, Event], State] = {
    **{(state, Event.ACCEPT): State.ACCEPTED for state in _STARTS},
    (State.ACCEPTED, Event.FETCH): State.DOWNLOADING,
    (State.ACCEPTED, Event.FETCHED): State.VERIFYING,
    (State.ACCEPTED, Event.ALREADY_ACTIVE): State.COMMITTED,
    (State.DOWNLOADING, Event.FETCHED): State.VERIFYING,
    (State.VERIFYING, Event.VERIFIED): State.INSTALLING,
    (State.INSTALLING, Event.COPIED): State.SELF_TEST,
    (State.SELF_TEST, Event.PASSED): State.COMMITTED,
    (State.ACCEPTED, Event.FAILED): State.REFUSED,
    (State.DOWNLOADING, Event.FAILED): State.REFUSED,
    (State.VERIFYING, Event.FAILED): State.REFUSED,
    (State.INSTALLING, Event.FAILED): State.ROLLED_BACK,
    (State.SELF_TEST, Event.FAILED): State.ROLLED_BACK,
}

# An update is under way in these states: after a restart it must be carried on or ended.
IN_PROGRESS = frozenset({State.ACCEPTED, State.DOWNLOADING, State.VERIFYING, State.INSTALLING, State.SELF_TEST})
# Of those, the ones a restart carries on (for an update the fleet sent): their steps wait on the network and
# change nothing on the device. A restart in any other in-progress state ends the update as `interrupted`.
RESUMABLE = frozenset({State.ACCEPTED, State.DOWNLOADING})
FINAL = frozenset({State.COMMITTED, State.ROLLED_BACK, State.REFUSED})


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

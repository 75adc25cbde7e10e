"""The update lifecycle table: the happy paths, refusals before the slot is touched, rollbacks after, nothing else."""

from __future__ import annotations

import pytest

from edgeml.device_agent.update.lifecycle import (
    FINAL,
    IN_PROGRESS,
    RESUMABLE,
    TRANSITIONS,
    Event,
    LifecycleError,
    State,
    next_state,
)
from edgeml.device_agent.update.update_steps import STEPS


def _walk(state, *events):
    seen = []
    for event in events:
        state = next_state(state, event)
        seen.append(state)
    return seen


def test_a_download_walks_every_step_in_order():
    events = (Event.ACCEPT, Event.FETCH, Event.FETCHED, Event.VERIFIED, Event.COPIED, Event.PASSED)
    assert _walk(State.IDLE, *events) == [
        State.ACCEPTED, State.DOWNLOADING, State.VERIFYING, State.INSTALLING, State.SELF_TEST, State.COMMITTED,
    ]  # fmt: skip


def test_a_local_file_or_the_other_slot_skips_the_download_and_the_active_one_is_a_no_op():
    assert _walk(State.COMMITTED, Event.ACCEPT, Event.FETCHED) == [State.ACCEPTED, State.VERIFYING]
    assert _walk(State.COMMITTED, Event.ACCEPT, Event.ALREADY_ACTIVE) == [State.ACCEPTED, State.COMMITTED]


@pytest.mark.parametrize("state", [State.ACCEPTED, State.DOWNLOADING, State.VERIFYING])
def test_a_failure_before_the_slot_is_touched_is_a_refusal(state):
    assert next_state(state, Event.FAILED) is State.REFUSED


@pytest.mark.parametrize("state", [State.INSTALLING, State.SELF_TEST])
def test_a_failure_once_the_candidate_is_in_its_slot_is_a_rollback(state):
    assert next_state(state, Event.FAILED) is State.ROLLED_BACK


def test_a_new_update_starts_from_any_end_or_replaces_a_download():
    starts = {s for (s, e) in TRANSITIONS if e is Event.ACCEPT}
    assert starts == {State.IDLE, State.DOWNLOADING} | FINAL


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (State.IDLE, Event.PASSED),  # nothing to commit
        (State.VERIFYING, Event.PASSED),  # skipping the copy and the self-test
        (State.COMMITTED, Event.FAILED),  # a committed model is not rolled back by a late failure
        (State.INSTALLING, Event.ACCEPT),  # no second update on top of one writing a slot
        (State.DOWNLOADING, Event.ALREADY_ACTIVE),  # decided in `accepted`, not later
    ],
)
def test_unknown_transitions_raise_a_clear_error(state, event):
    with pytest.raises(LifecycleError, match=f"no transition from '{state.value}' on event '{event.value}'") as info:
        next_state(state, event)
    assert "events allowed" in info.value.hint


def test_every_state_is_reachable_every_update_can_end_and_every_step_has_a_function():
    reachable = {State.IDLE} | set(TRANSITIONS.values())
    assert reachable == set(State)
    assert all(next_state(state, Event.FAILED) in FINAL for state in IN_PROGRESS)
    assert set(STEPS) == set(IN_PROGRESS) and RESUMABLE < IN_PROGRESS

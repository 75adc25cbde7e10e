"""The update lifecycle table: the happy path, failure edges from every in-progress state, nothing else."""

from __future__ import annotations

import pytest

from edgeml.device_agent.lifecycle import IN_PROGRESS, TRANSITIONS, Event, LifecycleError, State, next_state


def test_happy_path_walks_every_step_in_order():
    state, seen = State.IDLE, []
    for event in (Event.START, Event.FETCHED, Event.VERIFIED, Event.COPIED, Event.PASSED, Event.RESET):
        state = next_state(state, event)
        seen.append(state)
    assert seen == [
        State.DOWNLOADING, State.VERIFYING, State.INSTALLING, State.SELF_TEST, State.COMMITTED, State.IDLE,
    ]  # fmt: skip


@pytest.mark.parametrize("state", sorted(IN_PROGRESS))
def test_every_step_can_fail_to_rolled_back(state):
    assert next_state(state, Event.FAILED) is State.ROLLED_BACK


def test_only_finished_updates_reset_to_idle():
    assert next_state(State.ROLLED_BACK, Event.RESET) is State.IDLE
    assert {s for (s, e) in TRANSITIONS if e is Event.RESET} == {State.COMMITTED, State.ROLLED_BACK}


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (State.IDLE, Event.PASSED),  # nothing to commit
        (State.VERIFYING, Event.PASSED),  # skipping the copy and the self-test
        (State.COMMITTED, Event.FAILED),  # a committed model is not rolled back by a late failure
        (State.INSTALLING, Event.START),  # no second update on top of one in progress
        (State.IDLE, Event.RESET),
    ],
)
def test_unknown_transitions_raise_a_clear_error(state, event):
    with pytest.raises(LifecycleError, match=f"no transition from '{state.value}' on event '{event.value}'") as info:
        next_state(state, event)
    assert "events allowed" in info.value.hint


def test_every_state_is_reachable_and_can_end():
    reachable = {State.IDLE} | set(TRANSITIONS.values())
    assert reachable == set(State)
    assert all(any(s == state for (s, _) in TRANSITIONS) for state in State)

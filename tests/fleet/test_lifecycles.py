"""The rollout and execution transition tables (fleet/lifecycles.py) on a real SQLite file and a real PostgreSQL:
every edge moves a row, every missing edge raises and moves nothing, and of two writers racing to move one
execution exactly one wins — two Database connections stand in for two fleet instances."""

from __future__ import annotations

import itertools
import threading
from enum import Enum
from pathlib import Path

import pytest
import yaml

from edgeml.fleet.database import Database
from edgeml.fleet.lifecycles import (
    EXECUTION,
    EXECUTION_TRANSITIONS,
    ROLLOUT,
    ROLLOUT_TRANSITIONS,
    SETTLED,
    ExecutionEvent,
    ExecutionState,
    FleetTransitionError,
    Lifecycle,
    RolloutEvent,
    RolloutState,
    apply_event,
)

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text())
EXECUTION_KEY = ("r-1", "cam-00")


@pytest.fixture
def db(db_url):
    """A fleet database holding one rollout r-1 and one execution of it, on device cam-00 (SQLite, PostgreSQL)."""
    database = Database(db_url)
    with database.transaction() as tx:
        tx.execute("INSERT INTO artifacts VALUES ('sha-a', 'digits', '1.2.3', 1, 'cpu-ort', 10, '{}', 0)")
        tx.execute("INSERT INTO devices (id, target, first_seen, last_seen) VALUES ('cam-00', 'cpu-ort', 0, 0)")
        tx.execute(
            "INSERT INTO rollouts (id, artifact_sha, selector, plan, state, created_at, updated_at) "
            "VALUES ('r-1', 'sha-a', 'all', '{}', 'running', 0, 0)"
        )
        tx.execute("INSERT INTO executions (rollout_id, device_id, wave, state) VALUES ('r-1', 'cam-00', 0, 'pending')")
    yield database
    database.close()


def put(db: Database, lifecycle: Lifecycle, key: tuple, state: str) -> None:
    where = " AND ".join(f"{c}=?" for c in lifecycle.key)
    with db.transaction() as tx:
        tx.execute(f"UPDATE {lifecycle.table} SET state=? WHERE {where}", (state, *key))


def state_of(db: Database, lifecycle: Lifecycle, key: tuple) -> str:
    where = " AND ".join(f"{c}=?" for c in lifecycle.key)
    return db.query(f"SELECT state FROM {lifecycle.table} WHERE {where}", key)[0][0]


def move(db: Database, lifecycle: Lifecycle, key: tuple, event, **fields) -> bool:
    with db.transaction() as tx:
        return apply_event(tx, lifecycle, key, event, **fields)


TABLES = [(ROLLOUT, ("r-1",), RolloutState, RolloutEvent), (EXECUTION, EXECUTION_KEY, ExecutionState, ExecutionEvent)]


def _id(value) -> str:
    return value.value if isinstance(value, Enum) else getattr(value, "name", None) or "/".join(value)


EDGES = [(lc, key, s, e, new) for lc, key, _S, _E in TABLES for (s, e), new in lc.transitions.items()]
MISSING = [
    (lc, key, s, e)
    for lc, key, states, events in TABLES
    for s, e in itertools.product(states, events)
    if (s, e) not in lc.transitions
]


@pytest.mark.parametrize(("lifecycle", "key", "state", "event", "new"), EDGES, ids=_id)
def test_every_edge_moves_the_row(db, lifecycle, key, state, event, new):
    put(db, lifecycle, key, state.value)
    assert lifecycle.next_state(state, event) is new
    assert move(db, lifecycle, key, event) is True
    assert state_of(db, lifecycle, key) == new.value


@pytest.mark.parametrize(("lifecycle", "key", "state", "event"), MISSING, ids=_id)
def test_a_missing_edge_raises_and_the_update_moves_nothing(db, lifecycle, key, state, event):
    with pytest.raises(FleetTransitionError, match=f"no transition from '{state.value}' on event '{event.value}'"):
        lifecycle.next_state(state, event)
    put(db, lifecycle, key, state.value)
    assert move(db, lifecycle, key, event) is False
    assert state_of(db, lifecycle, key) == state.value


def test_the_tables_cover_every_state_and_settled_is_what_waits_for_no_device():
    for transitions, states in ((ROLLOUT_TRANSITIONS, RolloutState), (EXECUTION_TRANSITIONS, ExecutionState)):
        assert {s for pair in transitions.items() for s in (pair[0][0], pair[1])} == set(states)
    waiting = {ExecutionState.PENDING, ExecutionState.IN_PROGRESS, ExecutionState.REVERTING}
    assert set(ExecutionState) - SETTLED == waiting
    assert set(EXECUTION.sources(ExecutionEvent.DEADLINE_PASSED)) == waiting - {ExecutionState.PENDING}


def test_the_refusal_names_the_allowed_events():
    with pytest.raises(FleetTransitionError) as info:
        ROLLOUT.next_state(RolloutState.COMPLETED, RolloutEvent.RESUME)
    assert "events allowed in 'completed': none" in info.value.hint
    with pytest.raises(FleetTransitionError) as info:
        EXECUTION.next_state(ExecutionState.REVERTING, ExecutionEvent.INSTALLED)
    assert "events allowed in 'reverting': deadline_passed, reverted" in info.value.hint


def test_an_event_with_two_targets_cannot_be_one_update():
    with pytest.raises(ValueError, match="'abort' leads to two states"):
        Lifecycle("bad", "rollouts", ("id",), frozenset(), RolloutState.RUNNING, {
            (RolloutState.RUNNING, RolloutEvent.ABORT): RolloutState.ABORTED,
            (RolloutState.PAUSED, RolloutEvent.ABORT): RolloutState.COMPLETED,
        })  # fmt: skip


def test_bad_calls_are_refused_before_any_sql(db):
    with db.transaction() as tx:
        with pytest.raises(FleetTransitionError, match="no event 'pause'"):
            apply_event(tx, EXECUTION, EXECUTION_KEY, RolloutEvent.PAUSE)
        with pytest.raises(FleetTransitionError, match=r"columns \['state_of_mind'\]"):
            apply_event(tx, EXECUTION, EXECUTION_KEY, ExecutionEvent.EXPOSE, state_of_mind="calm")
        with pytest.raises(FleetTransitionError, match="key columns: rollout_id, device_id"):
            apply_event(tx, EXECUTION, ("r-1",), ExecutionEvent.EXPOSE)
    assert state_of(db, EXECUTION, EXECUTION_KEY) == "pending"


def test_fields_move_with_the_state_and_a_guard_holds_it_back(db):
    assert move(db, EXECUTION, EXECUTION_KEY, ExecutionEvent.EXPOSE, previous_sha=None, deadline=60.0)
    row = db.query("SELECT state, previous_sha, deadline FROM executions")[0]
    assert tuple(row) == ("in_progress", None, 60.0)
    with db.transaction() as tx:  # the rollout is at wave -1, not 3: a decision about wave 3 is stale
        assert not apply_event(tx, ROLLOUT, ("r-1",), RolloutEvent.NEXT_WAVE, {"wave": 3}, wave=4)
        assert apply_event(tx, ROLLOUT, ("r-1",), RolloutEvent.NEXT_WAVE, {"wave": -1}, wave=0, wave_started_at=5.0)
    assert tuple(db.query("SELECT state, wave, wave_started_at FROM rollouts")[0]) == ("running", 0, 5.0)


def test_two_instances_with_the_same_stale_read_move_an_execution_once(db):
    second = Database(db.url)  # another fleet instance on the same database
    try:
        seen = [d.query("SELECT state FROM executions WHERE device_id='cam-00'")[0][0] for d in (db, second)]
        assert seen == ["pending", "pending"]  # both decide to expose cam-00
        assert move(db, EXECUTION, EXECUTION_KEY, ExecutionEvent.EXPOSE, exposed_at=1.0) is True
        assert move(second, EXECUTION, EXECUTION_KEY, ExecutionEvent.EXPOSE, exposed_at=2.0) is False
        assert tuple(second.query("SELECT state, exposed_at FROM executions")[0]) == ("in_progress", 1.0)
    finally:
        second.close()


def test_of_racing_writers_on_two_connections_exactly_one_wins(db):
    second = Database(db.url)
    start, results = threading.Barrier(8), []

    def race(database: Database, event: ExecutionEvent) -> None:
        start.wait()
        results.append((event, move(database, EXECUTION, EXECUTION_KEY, event)))

    # NOTE: expose and cancel both leave `pending`: whichever commits first decides, the others move nothing
    events = [ExecutionEvent.EXPOSE, ExecutionEvent.CANCEL] * 4
    threads = [threading.Thread(target=race, args=((db, second)[i % 2], e)) for i, e in enumerate(events)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        winners = [event for event, moved in results if moved]
        assert len(results) == 8 and len(winners) == 1, results
        assert state_of(db, EXECUTION, EXECUTION_KEY) == EXECUTION.target(winners[0]).value
    finally:
        second.close()


def test_the_http_api_documents_exactly_these_states():
    schemas = SPEC["components"]["schemas"]
    assert schemas["RolloutState"]["enum"] == [s.value for s in RolloutState]
    assert schemas["ExecutionState"]["enum"] == [s.value for s in ExecutionState]

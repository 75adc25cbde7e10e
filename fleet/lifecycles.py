"""A rollout's and an execution's lifecycle as transition tables, applied to the database as conditional updates.

    rollout:
        running ─pause→ paused ─resume→ running
        running ─next_wave→ running                 the next wave (the canary first) is exposed
        running ─complete→ completed                every wave passed its gates
        running | paused ─abort→ aborted            a gate failed or timed out, or the operator aborted

    execution (one device in one rollout):
        pending ─expose→ in_progress ─installed→ succeeded
           │                  ├─install_failed→ failed
           │                  └─deadline_passed→ timed_out
           └─cancel→ cancelled                      the rollout was aborted before this device's wave
        and once the rollout is aborted, an exposed execution (in_progress | succeeded | timed_out)
           ─revert→ reverting ─reverted→ rolled_back        (timed_out ─reverted→ rolled_back too)
                          ├─deadline_passed→ timed_out
                          └─supersede→ superseded   a newer rollout took the device over (a hotfix after the
                                                    abort reaches a device still offline since it)
           ─cannot_revert→ failed                   the device had no earlier model to return to

`apply_event` is the only way a state changes: one `UPDATE … SET state = <target> WHERE <key> AND state IN
(<the states the table allows the event from>)`. A decision taken on a stale read — another fleet instance,
or the operator, moved the row first — changes nothing and returns False, so two writers never both move one
execution. Every event has one target state (checked when a table is built), which is what lets one
conditional UPDATE be the whole transition. A missing edge is a bug and raises `FleetTransitionError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from edgeml.fleet.database import Connection, FleetError

__all__ = [
    "EXECUTION",
    "ROLLOUT",
    "SETTLED",
    "ExecutionEvent",
    "ExecutionState",
    "FleetTransitionError",
    "Lifecycle",
    "Moved",
    "RolloutEvent",
    "RolloutState",
    "apply_event",
]


class RolloutState(str, Enum):
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


class RolloutEvent(str, Enum):
    PAUSE = "pause"  # the operator holds back further waves
    RESUME = "resume"  # the operator lets it go on
    NEXT_WAVE = "next_wave"  # the previous wave passed (or there was none): expose the next one
    COMPLETE = "complete"  # the last wave passed its gates
    ABORT = "abort"  # a gate failed or had no data by its deadline, or the operator aborted


class ExecutionState(str, Enum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    REVERTING = "reverting"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


class ExecutionEvent(str, Enum):
    EXPOSE = "expose"  # its wave started: the device's desired state is the new artifact
    INSTALLED = "installed"  # the device reported the new artifact active
    INSTALL_FAILED = "install_failed"  # the device reported the install failed or the desired state refused
    DEADLINE_PASSED = "deadline_passed"  # no result by the execution's deadline
    CANCEL = "cancel"  # the rollout was aborted before this device was exposed
    REVERT = "revert"  # the rollout was aborted: the device's desired state is its earlier model
    CANNOT_REVERT = "cannot_revert"  # the rollout was aborted and the device ran nothing before
    REVERTED = "reverted"  # the device reported its earlier model active again
    SUPERSEDE = "supersede"  # a newer rollout exposed the device while this aborted one still reverted it


_R, _RE, _E, _EE = RolloutState, RolloutEvent, ExecutionState, ExecutionEvent

ROLLOUT_TRANSITIONS: dict[tuple[RolloutState, RolloutEvent], RolloutState] = {
    (_R.RUNNING, _RE.PAUSE): _R.PAUSED,
    (_R.PAUSED, _RE.RESUME): _R.RUNNING,
    (_R.RUNNING, _RE.NEXT_WAVE): _R.RUNNING,
    (_R.RUNNING, _RE.COMPLETE): _R.COMPLETED,
    (_R.RUNNING, _RE.ABORT): _R.ABORTED,
    (_R.PAUSED, _RE.ABORT): _R.ABORTED,
}

EXECUTION_TRANSITIONS: dict[tuple[ExecutionState, ExecutionEvent], ExecutionState] = {
    (_E.PENDING, _EE.EXPOSE): _E.IN_PROGRESS,
    (_E.PENDING, _EE.CANCEL): _E.CANCELLED,
    (_E.IN_PROGRESS, _EE.INSTALLED): _E.SUCCEEDED,
    (_E.IN_PROGRESS, _EE.INSTALL_FAILED): _E.FAILED,
    (_E.IN_PROGRESS, _EE.DEADLINE_PASSED): _E.TIMED_OUT,
    (_E.REVERTING, _EE.DEADLINE_PASSED): _E.TIMED_OUT,
    (_E.IN_PROGRESS, _EE.REVERT): _E.REVERTING,
    (_E.SUCCEEDED, _EE.REVERT): _E.REVERTING,
    (_E.TIMED_OUT, _EE.REVERT): _E.REVERTING,
    (_E.IN_PROGRESS, _EE.CANNOT_REVERT): _E.FAILED,
    (_E.SUCCEEDED, _EE.CANNOT_REVERT): _E.FAILED,
    (_E.TIMED_OUT, _EE.CANNOT_REVERT): _E.FAILED,
    (_E.REVERTING, _EE.REVERTED): _E.ROLLED_BACK,
    (_E.TIMED_OUT, _EE.REVERTED): _E.ROLLED_BACK,
    (_E.REVERTING, _EE.SUPERSEDE): _E.SUPERSEDED,
}

# NOTE: a wave has settled when none of its executions waits for a device (pending, in_progress, reverting)
SETTLED = frozenset({_E.SUCCEEDED, _E.FAILED, _E.TIMED_OUT, _E.ROLLED_BACK, _E.CANCELLED, _E.SUPERSEDED})


class FleetTransitionError(FleetError):
    """The code asked for a transition the lifecycle table does not have: a bug in the fleet."""


@dataclass(frozen=True)
class Lifecycle:
    """One table of (state, event) → state, and the database rows it moves."""

    name: str  # "rollout", "execution": for messages
    table: str  # the SQL table whose `state` column it moves
    key: tuple[str, ...]  # the columns naming one row
    columns: frozenset[str]  # the other columns an event may set along with the state
    initial: Enum
    transitions: Mapping[tuple[Any, Any], Any]

    def __post_init__(self) -> None:
        for _state, event in self.transitions:
            if len({new for (_s, e), new in self.transitions.items() if e == event}) > 1:
                raise ValueError(f"{self.name} event {event.value!r} leads to two states: one UPDATE cannot apply it")

    def next_state(self, state: Enum, event: Enum) -> Enum:
        """The state `event` leads to from `state`; FleetTransitionError if the table has no such edge."""
        try:
            return self.transitions[(state, event)]
        except KeyError:
            allowed = sorted(e.value for (s, e) in self.transitions if s == state)
            raise FleetTransitionError(
                f"the {self.name} lifecycle has no transition from {_text(state)!r} on event {_text(event)!r}",
                f"events allowed in {_text(state)!r}: {', '.join(allowed) or 'none'} (see fleet/lifecycles.py)",
            ) from None

    def sources(self, event: Enum) -> tuple[str, ...]:
        """The states `event` moves a row from (values, sorted); FleetTransitionError for an unknown event."""
        found = sorted(s.value for (s, e) in self.transitions if e == event)
        if not found:
            raise FleetTransitionError(
                f"the {self.name} lifecycle has no event {_text(event)!r}",
                f"events: {', '.join(sorted({e.value for (_s, e) in self.transitions}))} (see fleet/lifecycles.py)",
            )
        return tuple(found)

    def can(self, event: Enum, column: str = "state") -> tuple[str, tuple[str, ...]]:
        """`column IN (?,…)` and its parameters: the rows `event` may move, for a query that picks them."""
        sources = self.sources(event)
        return f"{column} IN ({_marks(sources)})", sources

    def target(self, event: Enum) -> Enum:
        """The one state `event` leads to (from any of its sources)."""
        state = self.sources(event)[0]
        return self.transitions[(state, event)]


ROLLOUT = Lifecycle(
    "rollout",
    "rollouts",
    ("id",),
    frozenset({"wave", "wave_started_at", "updated_at", "reason"}),
    RolloutState.RUNNING,
    ROLLOUT_TRANSITIONS,
)
EXECUTION = Lifecycle(
    "execution",
    "executions",
    ("rollout_id", "device_id"),
    frozenset({"previous_sha", "exposed_at", "deadline", "finished_at", "reason"}),
    ExecutionState.PENDING,
    EXECUTION_TRANSITIONS,
)


@dataclass(frozen=True)
class Moved:
    """One applied transition, for the log and for callers that report what a step did."""

    lifecycle: str
    key: tuple[str, ...]
    event: str
    state: str

    def __str__(self) -> str:
        return f"{self.lifecycle} {'/'.join(self.key)}: {self.event} → {self.state}"


def apply_event(
    tx: Connection,
    lifecycle: Lifecycle,
    key: tuple[str, ...],
    event: Enum,
    guard: Mapping[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move row `key` by `event` if it is in a state the table allows the event from (and every `guard`
    column still holds its value), setting `fields` with it; return whether it moved."""
    in_sources, sources = lifecycle.can(event)
    guard = dict(guard or {})
    unknown = (set(fields) | set(guard)) - lifecycle.columns
    if unknown or len(key) != len(lifecycle.key):
        raise FleetTransitionError(
            f"{lifecycle.name} {event.value}: key {key!r} or columns {sorted(unknown)} do not fit {lifecycle.table}",
            f"key columns: {', '.join(lifecycle.key)}; other columns: {', '.join(sorted(lifecycle.columns))}",
        )
    sets = ", ".join(f"{c}=?" for c in ("state", *fields))
    where = [f"{c}=?" for c in lifecycle.key] + [f"{c} IS NULL" if v is None else f"{c}=?" for c, v in guard.items()]
    sql = f"UPDATE {lifecycle.table} SET {sets} WHERE {' AND '.join([*where, in_sources])}"
    params = (lifecycle.target(event).value, *fields.values(), *key, *(v for v in guard.values() if v is not None))
    return tx.execute(sql, (*params, *sources)).rowcount == 1


def _marks(values: tuple) -> str:
    return ",".join("?" * len(values))


def _text(value: Any) -> str:
    return value.value if isinstance(value, Enum) else str(value)

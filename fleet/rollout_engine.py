"""Staged rollouts as a durable state machine in the fleet database.

Waves are cumulative shares of the compatible devices the selector matched at creation, in a stable
hash order. `tick(now)` times out executions past their deadline and advances every running rollout:
it exposes the next wave; it judges the gates on the devices that report (wave_health.py) — a gate they
already violate aborts the rollout at once, without waiting for a silent or offline device, and reverts
every exposed device to the model it ran before; once the wave settled (every device finished or timed
out, a timed-out one counting as a failed install) and baked from that moment, passing gates expose the next.

Every state change is an event from the tables in lifecycles.py, applied as a conditional update, so a
step decided on a stale read (the operator paused meanwhile, another instance got there first) moves
nothing. Each step is one transaction, and writes the desired states it decides to the outbox
(desired_states.py) in it; the steps return what moved, for the service's log.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from edgeml.fleet.artifact_store import ArtifactStore
from edgeml.fleet.database import Database, FleetConflictError, FleetError, FleetNotFoundError
from edgeml.fleet.desired_states import DesiredStates
from edgeml.fleet.device_claims import refuse_claimed
from edgeml.fleet.device_registry import DeviceRegistry
from edgeml.fleet.lifecycles import (
    EXECUTION,
    ROLLOUT,
    SETTLED,
    ExecutionEvent,
    ExecutionState,
    Lifecycle,
    Moved,
    RolloutEvent,
    RolloutState,
    apply_event,
)
from edgeml.fleet.release_floors import ReleaseFloors
from edgeml.fleet.rollout_audit import FLEET, RolloutAudit
from edgeml.fleet.rollout_plan import RolloutPlan
from edgeml.fleet.selector import parse_selector
from edgeml.fleet.wave_health import WaveHealth

__all__ = ["RolloutEngine"]

_NOTHING_TO_REVERT_TO = "aborted: the device had no earlier model to return to"
OPERATOR = "operator"  # the default actor of the operator's calls (the CLI and HTTP API name theirs)
EARLY_JUDGE_S = 2.0  # how often an unsettled wave's reporting devices are judged (each judgement reads telemetry)
EXECUTION_STATES = tuple(ExecutionState)


@dataclass
class RolloutEngine:
    db: Database
    artifacts: ArtifactStore
    devices: DeviceRegistry
    health: WaveHealth
    _judged_at: dict[str, float] = field(default_factory=dict, repr=False)  # early judgements, per rollout

    def __post_init__(self) -> None:
        self.floors = ReleaseFloors(self.db)
        self.audit = RolloutAudit(self.db)

    def create(
        self, artifact_spec: str, selector_text: str, plan: RolloutPlan, now: float, actor: str = OPERATOR
    ) -> dict[str, Any]:
        """A new rollout of `artifact_spec` to the devices `selector_text` matches (refused below a device's
        anti-rollback floor unless the plan allows a rollback); `actor` is named in its audit trail."""
        selector = parse_selector(selector_text)
        matched = self.devices.select(selector)
        candidates = self.artifacts.find(artifact_spec)
        targets = {a["target"]: a for a in candidates}
        compatible = [d for d in matched if d["target"] in targets]
        if not compatible:
            raise FleetError(
                f"selector {selector_text!r} matches {len(matched)} device(s), {len(compatible)} of them can run "
                f"{artifact_spec} (built for {', '.join(sorted(targets))})",
                "check `edgeml fleet devices` and the selector, or publish a build for those targets",
            )
        if len(targets) > 1:
            raise FleetError(
                f"{artifact_spec} exists for several targets ({', '.join(targets)})",
                "add target=ID to the selector, or name the artifact by sha256",
            )
        artifact = next(iter(targets.values()))
        refuse_claimed(self.db, [d["id"] for d in compatible], selector_text, take_over_reverts=True)
        lowered = self._below_floor(artifact, [d["id"] for d in compatible], artifact_spec, selector_text, plan)
        rollout_id = "r-" + uuid.uuid4().hex[:10]
        waves = _assign_waves(rollout_id, [d["id"] for d in compatible], plan.waves)
        plan_json = json.dumps(plan.to_dict())
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO rollouts (id, artifact_sha, selector, plan, state, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (rollout_id, artifact["sha256"], selector_text, plan_json, ROLLOUT.initial.value, now, now),
            )
            for device_id, wave in waves.items():
                tx.execute(
                    "INSERT INTO executions (rollout_id, device_id, wave, state) VALUES (?,?,?,?)",
                    (rollout_id, device_id, wave, EXECUTION.initial.value),
                )
            RolloutAudit.record(tx, rollout_id, now, "created", _created(artifact, selector_text, plan, lowered), actor)
        return self.status(rollout_id) | {"skipped_incompatible": len(matched) - len(compatible)}

    def _below_floor(self, artifact, device_ids: list[str], spec: str, selector: str, plan: RolloutPlan) -> dict:
        """The devices whose anti-rollback floor is above the artifact's release ({device: Floor}); refused
        unless the plan allows a rollback (the operator's decision, then recorded in the audit trail)."""
        floors = {d: self.floors.floor(d) for d in device_ids}
        below = {d: f for d, f in floors.items() if f is not None and f.release > artifact["release"]}
        if below and not plan.allow_rollback:
            device, floor = next(iter(below.items()))
            raise FleetConflictError(
                f"{artifact['name']}@{artifact['version']} (release {artifact['release']}) is below the anti-rollback "
                f"floor of {len(below)} of the {len(device_ids)} device(s), e.g. {device}: release {floor.release} "
                f"({floor.source}); they would refuse it",
                f"roll out a release at or above the floor, or take them back on purpose (signed, recorded in the "
                f"rollout's events): `edgeml fleet rollout create {spec} --to '{selector}' --allow-rollback`",
            )
        return below

    def tick(self, now: float) -> list[Moved]:
        """Time out executions past their deadline, then advance every running rollout one step: what moved.

        The desired states a step decides are written to the outbox (DesiredStates) in its transaction; the
        service publishes them from there."""
        moved = self._time_out(now)
        for r in self.db.query("SELECT * FROM rollouts WHERE state=?", (RolloutState.RUNNING.value,)):
            moved += self._advance(dict(r), now)
        return moved

    def _advance(self, r: dict[str, Any], now: float) -> list[Moved]:
        """One step of a running rollout: expose the canary; abort on a gate the reporting devices already
        violate; once the wave settled and baked from that moment, pass it (next wave, or complete)."""
        plan = RolloutPlan.from_dict(json.loads(r["plan"]))
        if r["wave"] < 0:
            return self._expose(r, 0, plan, now)
        settled_at = self._settled_at(r["id"], r["wave"])
        if settled_at is None and not self._judge_early(r["id"], now):
            return []
        verdict = self.health.judge(r, plan, final=settled_at is not None)
        if verdict.failed:
            return self._abort_step(r, f"wave {r['wave']} failed gate {verdict.reason}", now)
        if settled_at is None or now < settled_at + plan.bake_s:
            return []  # NOTE: the bake runs from the moment the wave settled, not from its start
        if verdict.undecided:
            return self._undecided(r, plan, settled_at, verdict.reason, now)
        if not self._has_wave(r["id"], r["wave"] + 1):
            done = {"reason": "every wave passed its gates", "updated_at": now}
            with self.db.transaction() as tx:
                return _move(tx, ROLLOUT, (r["id"],), RolloutEvent.COMPLETE, {"wave": r["wave"]}, **done)
        return self._expose(r, r["wave"] + 1, plan, now)

    def _judge_early(self, rollout_id: str, now: float) -> bool:
        """Whether to judge an unsettled wave on this tick: at most every EARLY_JUDGE_S per rollout."""
        if now - self._judged_at.get(rollout_id, -math.inf) < EARLY_JUDGE_S:
            return False
        self._judged_at[rollout_id] = now
        return True

    def _undecided(self, r, plan: RolloutPlan, settled_at: float, reason: str, now: float) -> list[Moved]:
        # NOTE: nothing waits forever: a gate still without data one deadline after the bake aborts
        if now >= settled_at + plan.bake_s + plan.deadline_s:
            return self._abort_step(r, f"wave {r['wave']}: no data to judge {reason}", now)
        return []

    def _expose(self, r: dict[str, Any], wave: int, plan: RolloutPlan, now: float) -> list[Moved]:
        """Move the rollout to `wave` (only if it still runs at the wave `r` was read at), then each of the
        wave's pending executions to in_progress, each with its desired state."""
        with self.db.transaction() as tx:
            started = {"wave": wave, "wave_started_at": now, "updated_at": now}
            moved = _move(tx, ROLLOUT, (r["id"],), RolloutEvent.NEXT_WAVE, {"wave": r["wave"]}, **started)
            if not moved:
                return []
            pending, states = EXECUTION.can(ExecutionEvent.EXPOSE)
            deadline = now + plan.deadline_s
            rows = tx.execute(
                f"SELECT device_id FROM executions WHERE rollout_id=? AND wave=? AND {pending}",
                (r["id"], wave, *states),
            ).fetchall()
            for (device_id,) in rows:
                dev = tx.execute("SELECT current_sha FROM devices WHERE id=?", (device_id,)).fetchone()
                exposed = {"previous_sha": dev[0] if dev else None, "exposed_at": now, "deadline": deadline}
                step = _move(tx, EXECUTION, (r["id"], device_id), ExecutionEvent.EXPOSE, **exposed)
                if step:
                    DesiredStates.assign(tx, device_id, r["artifact_sha"], r["id"], plan.allow_rollback, now)
                    step += _supersede_reverts(tx, r["id"], device_id, now)
                moved += step
        return moved

    def _has_wave(self, rollout_id: str, wave: int) -> bool:
        return bool(self.db.query("SELECT 1 FROM executions WHERE rollout_id=? AND wave=? LIMIT 1", (rollout_id, wave)))

    def _settled_at(self, rollout_id: str, wave: int) -> float | None:
        """When the last execution of the waves up to `wave` finished; None while one still waits for its
        device (a device past its deadline is timed out by the tick, so this always ends)."""
        waiting = [s.value for s in EXECUTION_STATES if s not in SETTLED]
        row = self.db.query(
            f"SELECT SUM(CASE WHEN state IN ({','.join('?' * len(waiting))}) THEN 1 ELSE 0 END), MAX(finished_at), "
            "MAX(exposed_at) "
            "FROM executions WHERE rollout_id=? AND wave<=?",
            (*waiting, rollout_id, wave),
        )[0]
        if row[0]:
            return None
        return row[1] if row[1] is not None else row[2]

    def _time_out(self, now: float) -> list[Moved]:
        """Every execution, of any rollout, still waiting for its device past its deadline → timed_out."""
        waiting, states = EXECUTION.can(ExecutionEvent.DEADLINE_PASSED)
        with self.db.transaction() as tx:
            rows = tx.execute(
                f"SELECT rollout_id, device_id FROM executions WHERE {waiting} AND deadline < ?", (*states, now)
            ).fetchall()
            late = {"finished_at": now, "reason": "no result before the deadline"}
            return _move_each(tx, rows, ExecutionEvent.DEADLINE_PASSED, **late)

    def on_device_model(self, device_id: str, current_sha: str | None, now: float) -> list[Moved]:
        """A device reported the model it runs: finish its in-progress or reverting executions."""
        installing, states = EXECUTION.can(ExecutionEvent.INSTALLED, "e.state")
        reverting, back = EXECUTION.can(ExecutionEvent.REVERTED, "e.state")
        with self.db.transaction() as tx:
            installed = tx.execute(
                f"SELECT e.rollout_id, e.device_id FROM executions e JOIN rollouts r ON r.id = e.rollout_id "
                f"WHERE e.device_id=? AND {installing} AND r.artifact_sha=?",
                (device_id, *states, current_sha),
            ).fetchall()
            reverted = tx.execute(
                f"SELECT e.rollout_id, e.device_id FROM executions e JOIN rollouts r ON r.id = e.rollout_id "
                f"WHERE e.device_id=? AND {reverting} AND e.previous_sha IS ? AND r.state=?",
                (device_id, *back, current_sha, RolloutState.ABORTED.value),
            ).fetchall()
            moved = _move_each(tx, installed, ExecutionEvent.INSTALLED, finished_at=now)
            return moved + _move_each(tx, reverted, ExecutionEvent.REVERTED, finished_at=now)

    def on_install_failed(self, device_id: str, artifact_sha: str, reason: str, now: float) -> list[Moved]:
        """A device reported that installing `artifact_sha` failed: its in-progress execution of it failed."""
        installing, states = EXECUTION.can(ExecutionEvent.INSTALL_FAILED, "e.state")
        with self.db.transaction() as tx:
            rows = tx.execute(
                f"SELECT e.rollout_id, e.device_id FROM executions e JOIN rollouts r ON r.id = e.rollout_id "
                f"WHERE e.device_id=? AND {installing} AND r.artifact_sha=?",
                (device_id, *states, artifact_sha),
            ).fetchall()
            return _move_each(tx, rows, ExecutionEvent.INSTALL_FAILED, finished_at=now, reason=reason[:500])

    def abort(self, rollout_id: str, reason: str, now: float, actor: str = OPERATOR) -> list[Moved]:
        """Stop the rollout and send every exposed device back to the model it ran before."""
        with self.db.transaction() as tx:
            moved = self._abort(tx, rollout_id, reason, now, actor=actor)
            if not moved:
                raise _refusal(tx, rollout_id, RolloutEvent.ABORT)
        return moved

    def _abort_step(self, r: dict[str, Any], reason: str, now: float) -> list[Moved]:
        """`abort` decided by a tick on row `r`: nothing, without complaint, when the rollout moved meanwhile."""
        with self.db.transaction() as tx:
            return self._abort(tx, r["id"], reason, now, {"wave": r["wave"]})

    def _abort(
        self, tx, rollout_id: str, reason: str, now: float, guard: dict | None = None, actor: str = FLEET
    ) -> list[Moved]:
        moved = _move(tx, ROLLOUT, (rollout_id,), RolloutEvent.ABORT, guard, actor, reason=reason, updated_at=now)
        if not moved:
            return []
        (plan,) = tx.execute("SELECT plan FROM rollouts WHERE id=?", (rollout_id,)).fetchone()
        deadline = now + RolloutPlan.from_dict(json.loads(plan)).deadline_s
        pending, states = EXECUTION.can(ExecutionEvent.CANCEL)
        rows = tx.execute(
            f"SELECT rollout_id, device_id FROM executions WHERE rollout_id=? AND {pending}", (rollout_id, *states)
        ).fetchall()
        moved += _move_each(tx, rows, ExecutionEvent.CANCEL, finished_at=now)
        exposed, states = EXECUTION.can(ExecutionEvent.REVERT)
        for device_id, previous in tx.execute(
            f"SELECT device_id, previous_sha FROM executions WHERE rollout_id=? AND {exposed}", (rollout_id, *states)
        ).fetchall():
            moved += _revert(tx, rollout_id, device_id, previous, deadline, now)
        return moved

    def pause(self, rollout_id: str, now: float, actor: str = OPERATOR) -> None:
        self._steer(rollout_id, RolloutEvent.PAUSE, now, actor)

    def resume(self, rollout_id: str, now: float, actor: str = OPERATOR) -> None:
        self._steer(rollout_id, RolloutEvent.RESUME, now, actor)

    def _steer(self, rollout_id: str, event: RolloutEvent, now: float, actor: str) -> None:
        with self.db.transaction() as tx:
            if not _move(tx, ROLLOUT, (rollout_id,), event, None, actor, updated_at=now):
                raise _refusal(tx, rollout_id, event)

    def status(self, rollout_id: str) -> dict[str, Any]:
        rows = self.db.query("SELECT * FROM rollouts WHERE id=?", (rollout_id,))
        if not rows:
            raise FleetNotFoundError(f"no rollout {rollout_id}", "see `edgeml fleet rollout list`")
        r = dict(rows[0])
        r["plan"] = json.loads(r["plan"])
        name = self.db.query("SELECT name || '@' || version FROM artifacts WHERE sha256=?", (r["artifact_sha"],))
        r["artifact"] = name[0][0] if name else r["artifact_sha"][:12]
        waves: dict[int, dict[str, int]] = {}
        for e in self.db.query(
            "SELECT wave, state, COUNT(*) n FROM executions WHERE rollout_id=? GROUP BY wave, state", (rollout_id,)
        ):
            waves.setdefault(e["wave"], {})[e["state"]] = e["n"]
        r["waves"] = [{"wave": w, "size": sum(s.values()), **s} for w, s in sorted(waves.items())]
        r["executions"] = [
            dict(e)
            for e in self.db.query(
                "SELECT device_id, wave, state, reason FROM executions WHERE rollout_id=? ORDER BY wave, device_id",
                (rollout_id,),
            )
        ]
        # NOTE: devices still installing or reverting: an ended rollout whose devices still move has not settled
        r["moving"] = sum(e["state"] not in SETTLED for e in r["executions"] if e["state"] != "pending")
        r["events"] = self.audit.of(rollout_id)
        return r

    def status_with_gates(self, rollout_id: str) -> dict[str, Any]:
        """`status` plus `gates_now`: each gate metric's current [value, baseline] (empty before the canary)."""
        r = self.status(rollout_id)
        r["gates_now"] = self.health.measure(r)["values"] if r["wave"] >= 0 else {}
        return r

    def list(self) -> list[dict[str, Any]]:
        """Every rollout, newest first, with its artifact as `name@version`."""
        return [
            dict(r)
            for r in self.db.query(
                "SELECT r.id, r.artifact_sha, a.name || '@' || a.version AS artifact, r.selector, r.state, r.wave, "
                "r.reason, r.created_at FROM rollouts r JOIN artifacts a ON a.sha256 = r.artifact_sha "
                "ORDER BY r.created_at DESC"
            )
        ]


def _move(
    tx, lifecycle: Lifecycle, key: tuple, event: Enum, guard: dict | None = None, actor: str = FLEET, **fields
) -> list[Moved]:
    """`apply_event`, as the list of what moved: one transition, or none when another writer moved it first.
    A rollout's transition is recorded in its audit trail, by `actor`, in the same transaction."""
    if not apply_event(tx, lifecycle, key, event, guard, **fields):
        return []
    if lifecycle is ROLLOUT:
        detail = fields.get("reason") or (f"wave {fields['wave']} exposed" if "wave" in fields else "")
        RolloutAudit.record(tx, key[0], fields.get("updated_at", 0.0), event.value, detail, actor)
    return [Moved(lifecycle.name, key, event.value, lifecycle.target(event).value)]


def _move_each(tx, keys, event: ExecutionEvent, **fields) -> list[Moved]:
    """`_move` every execution of `keys` (rows of rollout_id, device_id) by `event`."""
    return [m for key in keys for m in _move(tx, EXECUTION, tuple(key), event, **fields)]


def _supersede_reverts(tx, rollout_id: str, device_id: str, now: float) -> list[Moved]:
    """The device's reverts still waiting in aborted rollouts end: this rollout's desired state replaced them."""
    reverting, states = EXECUTION.can(ExecutionEvent.SUPERSEDE)
    rows = tx.execute(
        f"SELECT rollout_id, device_id FROM executions WHERE device_id=? AND rollout_id<>? AND {reverting}",
        (device_id, rollout_id, *states),
    ).fetchall()
    return _move_each(tx, rows, ExecutionEvent.SUPERSEDE, finished_at=now, reason=f"superseded by rollout {rollout_id}")


def _revert(tx, rollout_id: str, device_id: str, previous: str | None, deadline: float, now: float) -> list[Moved]:
    """An aborted rollout's exposed device: back to the model it ran before by `deadline`, or failed if it ran
    none."""
    key = (rollout_id, device_id)
    if previous is None:
        return _move(tx, EXECUTION, key, ExecutionEvent.CANNOT_REVERT, finished_at=now, reason=_NOTHING_TO_REVERT_TO)
    moved = _move(tx, EXECUTION, key, ExecutionEvent.REVERT, deadline=deadline)
    if moved:
        DesiredStates.assign(tx, device_id, previous, rollout_id, True, now)
    return moved


# NOTE: `previous`: the model most of its devices ran before it (what an operator would take them back to)
_STEERED = """
SELECT r.state, r.selector, (
    SELECT a.name || '@' || a.version FROM executions e JOIN artifacts a ON a.sha256 = e.previous_sha
    WHERE e.rollout_id = r.id GROUP BY a.name, a.version ORDER BY COUNT(*) DESC, a.name, a.version LIMIT 1
) AS previous FROM rollouts r WHERE r.id = ?
"""


def _created(artifact: dict[str, Any], selector: str, plan: RolloutPlan, lowered: dict) -> str:
    """The audit line of a new rollout: what, to whom, how, and any floor the operator chose to go below."""
    text = f"{artifact['name']}@{artifact['version']} (release {artifact['release']}) to {selector!r}: "
    gates = [g.text for g in plan.gates]
    text += f"waves {list(plan.waves)}, bake {plan.bake_s:g}s, deadline {plan.deadline_s:g}s, gates {gates}"
    if plan.allow_rollback:
        floors = sorted({f.release for f in lowered.values()})
        text += (
            f"; allow_rollback: {len(lowered)} device(s) taken below their anti-rollback floor {floors}"
            if lowered
            else "; allow_rollback (no device is below its floor)"
        )
    return text


def _refusal(tx, rollout_id: str, event: RolloutEvent) -> FleetError:
    """Why the operator's `event` did not move the rollout: it does not exist, or its state forbids it."""
    row = tx.execute(_STEERED, (rollout_id,)).fetchone()
    if row is None:
        return FleetNotFoundError(f"no rollout {rollout_id}", "see `edgeml fleet rollout list`")
    message = f"rollout {rollout_id} is {row['state']}, not {' or '.join(ROLLOUT.sources(event))}"
    if event is RolloutEvent.ABORT:  # NOTE: only an ended rollout refuses an abort
        message = f"rollout {rollout_id} is already {row['state']}"
    return FleetConflictError(message, _next_step(rollout_id, row, event.value))


def _next_step(rollout_id: str, row, verb: str) -> str:
    """What to do instead of `verb` on a rollout in the state `row` shows (the hint of a refused steer)."""
    state = row["state"]
    if state == "paused":
        return f"it is paused already; resume it with `edgeml fleet rollout resume {rollout_id}`"
    if state == "running":
        return f"it is running already; pause it with `edgeml fleet rollout pause {rollout_id}`"
    if state == "completed" and verb == "abort":
        return (
            "it finished, so there is nothing to revert; to take its devices back (the fleet signs the lowered "
            f"floor, so they accept it): `edgeml fleet rollout create {row['previous'] or 'NAME@VERSION'} "
            f"--to '{row['selector']}' --allow-rollback`"
        )
    if state == "aborted" and verb == "abort":
        return f"its devices are reverting or reverted; follow them with `edgeml fleet rollout status {rollout_id}`"
    return f"it has ended ({state}); start a new one with `edgeml fleet rollout create`"


def _assign_waves(rollout_id: str, device_ids: list[str], shares: tuple[float, ...]) -> dict[str, int]:
    """Stable hash order; wave k holds devices ranked below ceil(share_k·N) (the canary has at least one)."""
    ranked = sorted(device_ids, key=lambda d: hashlib.sha256(f"{rollout_id}:{d}".encode()).hexdigest())
    n, waves, start, k = len(ranked), {}, 0, 0
    for i, share in enumerate(shares):
        end = max(start + (1 if i == 0 else 0), math.ceil(share * n))
        if end > start:  # NOTE: with few devices some shares round to nothing; waves stay consecutive
            waves |= {device_id: k for device_id in ranked[start:end]}
            k += 1
        start = max(start, end)
    return waves

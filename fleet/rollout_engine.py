"""Staged rollouts as a durable state machine in the fleet database.

    rollout:    running ⇄ paused;  running → completed | aborted
    execution:  pending → in_progress → succeeded | failed | timed_out
                (on abort) exposed → reverting → rolled_back | timed_out;  never exposed → cancelled

Waves are cumulative shares of the compatible devices the selector matched at creation, in a stable
hash order. `tick(now)` advances every running rollout: it exposes the next wave, times out executions
past their deadline, and once a wave has settled and baked, evaluates the gates (wave_health.py): a
failing gate aborts the rollout and reverts every exposed device to the model it ran before. Every
change is one transaction; the desired states it decides are returned for the service to publish.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

from edgeml.fleet.artifact_store import ArtifactStore
from edgeml.fleet.database import Database, FleetConflictError, FleetError, FleetNotFoundError
from edgeml.fleet.desired_states import DesiredRow, DesiredStates
from edgeml.fleet.device_claims import refuse_claimed
from edgeml.fleet.device_registry import DeviceRegistry
from edgeml.fleet.rollout_plan import RolloutPlan
from edgeml.fleet.selector import parse_selector
from edgeml.fleet.wave_health import WaveHealth

__all__ = ["TERMINAL", "RolloutEngine"]

TERMINAL = {"succeeded", "failed", "timed_out", "rolled_back", "cancelled"}
SETTLED = TERMINAL  # a wave has settled when all its executions are terminal


@dataclass
class RolloutEngine:
    db: Database
    artifacts: ArtifactStore
    devices: DeviceRegistry
    health: WaveHealth

    def create(self, artifact_spec: str, selector_text: str, plan: RolloutPlan, now: float) -> dict[str, Any]:
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
        refuse_claimed(self.db, [d["id"] for d in compatible], selector_text)
        rollout_id = "r-" + uuid.uuid4().hex[:10]
        waves = _assign_waves(rollout_id, [d["id"] for d in compatible], plan.waves)
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO rollouts (id, artifact_sha, selector, plan, state, created_at, updated_at) "
                "VALUES (?,?,?,?,'running',?,?)",
                (rollout_id, artifact["sha256"], selector_text, json.dumps(plan.to_dict()), now, now),
            )
            for device_id, wave in waves.items():
                tx.execute(
                    "INSERT INTO executions (rollout_id, device_id, wave, state) VALUES (?,?,?,'pending')",
                    (rollout_id, device_id, wave),
                )
        return self.status(rollout_id) | {"skipped_incompatible": len(matched) - len(compatible)}

    def tick(self, now: float) -> list[DesiredRow]:
        """Advance every running or aborted rollout one step; return the desired states to publish."""
        out: list[DesiredRow] = []
        for r in self.db.query("SELECT * FROM rollouts WHERE state IN ('running', 'aborted')"):
            out += self._time_out(r, now)
            if r["state"] == "running":
                out += self._advance(dict(r), now)
        return out

    def _advance(self, r: dict[str, Any], now: float) -> list[DesiredRow]:
        plan = RolloutPlan.from_dict(json.loads(r["plan"]))
        if r["wave"] < 0:
            return self._expose(r, 0, plan, now)
        if not self._settled(r["id"], r["wave"]) or now < (r["wave_started_at"] or now) + plan.bake_s:
            return []
        verdict = self.health.judge(r, plan, now)
        if verdict.failed:
            return self.abort(r["id"], f"wave {r['wave']} failed gate {verdict.reason}", now)
        if verdict.undecided:
            return self._undecided(r, plan, verdict.reason, now)
        if not self._has_wave(r["id"], r["wave"] + 1):
            self._set_state(r["id"], "completed", "every wave passed its gates", now)
            return []
        return self._expose(r, r["wave"] + 1, plan, now)

    def _undecided(self, r, plan: RolloutPlan, reason: str, now: float) -> list[DesiredRow]:
        # NOTE: nothing waits forever: a gate still without data one deadline after the bake aborts
        if now >= r["wave_started_at"] + plan.bake_s + plan.deadline_s:
            return self.abort(r["id"], f"wave {r['wave']}: no data to judge {reason}", now)
        return []

    def _expose(self, r: dict[str, Any], wave: int, plan: RolloutPlan, now: float) -> list[DesiredRow]:
        out = []
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT device_id FROM executions WHERE rollout_id=? AND wave=? AND state='pending'", (r["id"], wave)
            ).fetchall()
            for (device_id,) in rows:
                dev = tx.execute("SELECT current_sha FROM devices WHERE id=?", (device_id,)).fetchone()
                tx.execute(
                    "UPDATE executions SET state='in_progress', previous_sha=?, exposed_at=?, deadline=? "
                    "WHERE rollout_id=? AND device_id=?",
                    (dev[0] if dev else None, now, now + plan.deadline_s, r["id"], device_id),
                )
                out.append(DesiredStates.assign(tx, device_id, r["artifact_sha"], r["id"], False, now))
            tx.execute(
                "UPDATE rollouts SET wave=?, wave_started_at=?, updated_at=? WHERE id=?", (wave, now, now, r["id"])
            )
        return out

    def _has_wave(self, rollout_id: str, wave: int) -> bool:
        return bool(self.db.query("SELECT 1 FROM executions WHERE rollout_id=? AND wave=? LIMIT 1", (rollout_id, wave)))

    def _settled(self, rollout_id: str, wave: int) -> bool:
        rows = self.db.query("SELECT state FROM executions WHERE rollout_id=? AND wave<=?", (rollout_id, wave))
        return all(row[0] in SETTLED for row in rows)

    def _time_out(self, r, now: float) -> list[DesiredRow]:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE executions SET state='timed_out', finished_at=?, reason='no result before the deadline' "
                "WHERE rollout_id=? AND state IN ('in_progress', 'reverting') AND deadline < ?",
                (now, r["id"], now),
            )
        return []

    def on_device_model(self, device_id: str, current_sha: str | None, now: float) -> None:
        """A device reported the model it runs: finish its in-progress or reverting executions."""
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE executions SET state='succeeded', finished_at=? WHERE device_id=? AND state='in_progress' "
                "AND rollout_id IN (SELECT id FROM rollouts WHERE artifact_sha=?)",
                (now, device_id, current_sha),
            )
            tx.execute(
                "UPDATE executions SET state='rolled_back', finished_at=? WHERE device_id=? "
                "AND state IN ('reverting', 'timed_out') AND previous_sha IS ? "
                "AND rollout_id IN (SELECT id FROM rollouts WHERE state='aborted')",
                (now, device_id, current_sha),
            )

    def on_install_failed(self, device_id: str, artifact_sha: str, reason: str, now: float) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE executions SET state='failed', finished_at=?, reason=? "
                "WHERE device_id=? AND state='in_progress' "
                "AND rollout_id IN (SELECT id FROM rollouts WHERE artifact_sha=?)",
                (now, reason[:500], device_id, artifact_sha),
            )

    def abort(self, rollout_id: str, reason: str, now: float) -> list[DesiredRow]:
        """Stop the rollout and send every exposed device back to the model it ran before."""
        out = []
        with self.db.transaction() as tx:
            r = tx.execute("SELECT state, selector, plan FROM rollouts WHERE id=?", (rollout_id,)).fetchone()
            if r is None:
                raise FleetNotFoundError(f"no rollout {rollout_id}", "see `edgeml fleet rollout list`")
            if r["state"] in ("completed", "aborted"):
                raise FleetConflictError(
                    f"rollout {rollout_id} is already {r['state']}", _next_step(rollout_id, r, "abort")
                )
            plan = RolloutPlan.from_dict(json.loads(r["plan"]))
            tx.execute(
                "UPDATE executions SET state='cancelled', finished_at=? WHERE rollout_id=? AND state='pending'",
                (now, rollout_id),
            )
            exposed = tx.execute(
                "SELECT device_id, previous_sha FROM executions WHERE rollout_id=? "
                "AND state IN ('in_progress', 'succeeded', 'timed_out')",
                (rollout_id,),
            ).fetchall()
            for device_id, previous in exposed:
                out += self._revert(tx, rollout_id, device_id, previous, plan, now)
            tx.execute(
                "UPDATE rollouts SET state='aborted', reason=?, updated_at=? WHERE id=?", (reason, now, rollout_id)
            )
        return out

    @staticmethod
    def _revert(tx, rollout_id: str, device_id: str, previous: str | None, plan: RolloutPlan, now: float) -> list:
        if previous is None:
            tx.execute(
                "UPDATE executions SET state='failed', finished_at=?, reason=? WHERE rollout_id=? AND device_id=?",
                (now, "aborted: the device had no earlier model to return to", rollout_id, device_id),
            )
            return []
        tx.execute(
            "UPDATE executions SET state='reverting', deadline=? WHERE rollout_id=? AND device_id=?",
            (now + plan.deadline_s, rollout_id, device_id),
        )
        return [DesiredStates.assign(tx, device_id, previous, rollout_id, True, now)]

    def pause(self, rollout_id: str, now: float) -> None:
        self._transition(rollout_id, "running", "paused", now)

    def resume(self, rollout_id: str, now: float) -> None:
        self._transition(rollout_id, "paused", "running", now)

    def _transition(self, rollout_id: str, expected: str, new: str, now: float) -> None:
        with self.db.transaction() as tx:
            cur = tx.execute(
                "UPDATE rollouts SET state=?, updated_at=? WHERE id=? AND state=?", (new, now, rollout_id, expected)
            )
            if cur.rowcount != 1:
                row = tx.execute("SELECT state, selector FROM rollouts WHERE id=?", (rollout_id,)).fetchone()
                if row is None:
                    raise FleetNotFoundError(f"no rollout {rollout_id}", "see `edgeml fleet rollout list`")
                verb = "pause" if new == "paused" else "resume"
                raise FleetConflictError(
                    f"rollout {rollout_id} is {row['state']}, not {expected}", _next_step(rollout_id, row, verb)
                )

    def _set_state(self, rollout_id: str, state: str, reason: str, now: float) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE rollouts SET state=?, reason=?, updated_at=? WHERE id=?", (state, reason, now, rollout_id)
            )

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


def _next_step(rollout_id: str, row, verb: str) -> str:
    """What to do instead of `verb` on a rollout in the state `row` shows (the hint of a refused steer)."""
    state = row["state"]
    if state == "paused":
        return f"it is paused already; resume it with `edgeml fleet rollout resume {rollout_id}`"
    if state == "running":
        return f"it is running already; pause it with `edgeml fleet rollout pause {rollout_id}`"
    if state == "completed" and verb == "abort":
        return (
            "it finished, so there is nothing to revert; to go back, roll the earlier version out with "
            f"`edgeml fleet rollout create NAME@VERSION --to '{row['selector']}'`"
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

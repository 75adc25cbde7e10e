"""A rollout's audit trail: who created it and with which plan (an `--allow-rollback` named, with the floors
it lowers), who paused, resumed or aborted it, and each step the fleet took, in the `rollout_events` table.

Rows are written in the transaction of the change they describe, so the trail never claims a step that did
not commit, and a step that committed is never missing from it.
"""

from __future__ import annotations

from typing import Any

from edgeml.fleet.database import Connection, Database

__all__ = ["FLEET", "RolloutAudit"]

FLEET = "fleet"  # the actor of the steps the fleet takes on its own (waves, gates, deadlines)


class RolloutAudit:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def record(tx: Connection, rollout_id: str, at: float, kind: str, detail: str, actor: str = FLEET) -> None:
        # NOTE: seq orders the steps of one instant; writers take turns, so MAX + 1 in the transaction is unique
        sql = "SELECT COALESCE(MAX(seq), 0) + 1 FROM rollout_events WHERE rollout_id=?"
        seq = tx.execute(sql, (rollout_id,)).fetchone()[0]
        tx.execute(
            "INSERT INTO rollout_events (rollout_id, seq, at, kind, actor, detail) VALUES (?,?,?,?,?,?)",
            (rollout_id, seq, at, kind, actor, detail[:2000]),
        )

    def of(self, rollout_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT at, kind, actor, detail FROM rollout_events WHERE rollout_id=? ORDER BY seq", (rollout_id,)
        )
        return [dict(r) for r in rows]

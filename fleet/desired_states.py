"""What each device should run, with a strictly growing sequence, persisted before it is published.

The row is written in the same transaction as the rollout step that decided it; publishing (signed,
retained) follows the commit. After a crash between the two, `all()` lets the service publish every row
again on start: the device treats a repeated sequence as a duplicate, so nothing is lost or applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.fleet.database import Connection, Database

__all__ = ["DesiredRow", "DesiredStates"]


@dataclass(frozen=True)
class DesiredRow:
    device_id: str
    sequence: int
    artifact_sha: str
    rollout_id: str
    allow_rollback: bool
    issued_at: float


class DesiredStates:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def assign(
        tx: Connection, device_id: str, artifact_sha: str, rollout_id: str, allow_rollback: bool, now: float
    ) -> DesiredRow:
        row = tx.execute("SELECT sequence FROM desired WHERE device_id=?", (device_id,)).fetchone()
        sequence = (row[0] if row else 0) + 1
        tx.execute(
            "INSERT INTO desired VALUES (?,?,?,?,?,?) ON CONFLICT (device_id) DO UPDATE SET "
            "sequence=excluded.sequence, "
            "artifact_sha=excluded.artifact_sha, rollout_id=excluded.rollout_id, "
            "allow_rollback=excluded.allow_rollback, issued_at=excluded.issued_at",
            (device_id, sequence, artifact_sha, rollout_id, int(allow_rollback), now),
        )
        return DesiredRow(device_id, sequence, artifact_sha, rollout_id, allow_rollback, now)

    def get(self, device_id: str) -> DesiredRow | None:
        rows = self.db.query("SELECT * FROM desired WHERE device_id=?", (device_id,))
        return _row(rows[0]) if rows else None

    def all(self) -> list[DesiredRow]:
        return [_row(r) for r in self.db.query("SELECT * FROM desired ORDER BY device_id")]


def _row(r) -> DesiredRow:
    return DesiredRow(
        r["device_id"], r["sequence"], r["artifact_sha"], r["rollout_id"], bool(r["allow_rollback"]), r["issued_at"]
    )

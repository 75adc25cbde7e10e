"""Device lifecycle events (stored once per device and seq) and counters of rejected messages by reason."""

from __future__ import annotations

from typing import Any

from edgeml.fleet.database import Database
from edgeml.protocol import Event

__all__ = ["EventLog"]


class EventLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, device_id: str, e: Event) -> bool:
        """Store an event; False when this (device, seq) was already stored (a redelivery)."""
        with self.db.transaction(exclusive=False) as tx:  # NOTE: an idempotent insert: no writers' turn needed
            cur = tx.execute(
                "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (device_id, e.seq, e.at, e.kind, e.step, int(e.ok), e.reason, e.artifact, e.release, e.rollout_id),
            )
            return cur.rowcount == 1

    def reject(self, reason: str, count: int = 1) -> None:
        with self.db.transaction(exclusive=False, durable=False) as tx:  # NOTE: a counter, one atomic upsert
            tx.execute(
                "INSERT INTO rejected VALUES (?, ?) ON CONFLICT(reason) DO UPDATE SET count=rejected.count+?",
                (reason, count, count),
            )

    def rejected(self) -> dict[str, int]:
        return {r["reason"]: r["count"] for r in self.db.query("SELECT * FROM rejected ORDER BY reason")}

    def for_device(self, device_id: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM events WHERE device_id=? ORDER BY seq DESC LIMIT ?", (device_id, limit))
        return [dict(r) for r in rows]

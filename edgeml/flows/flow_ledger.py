"""The retraining flow's lifecycle, one table per concern in its own SQLite file, written before each step.

`flow_runs` holds one row per request: its state (the table below) and why it is there. `flow_steps`
holds each finished step's result, so a re-run after a crash skips what is done and reuses what it made
(the reserved version, the compiled artifact, the rollout), which is what makes the flow idempotent.

    running → awaiting_approval → running            (an operator approved the rollout step)
    running → stopped                                (the new model was not better; the reason is kept)
    running → rolling_out → resolved | rollout_aborted
    any     → failed                                 (a step raised; a re-run starts at that step)
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["FLOW_STATES", "FlowLedger"]

FLOW_STATES = ("running", "awaiting_approval", "stopped", "rolling_out", "resolved", "rollout_aborted", "failed")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_runs (
    request_id TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL,
    started_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS flow_steps (
    request_id TEXT NOT NULL, step TEXT NOT NULL, result TEXT NOT NULL, finished_at REAL NOT NULL,
    PRIMARY KEY (request_id, step)
);
"""


class FlowLedger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def begin(self, request_id: str) -> dict[str, Any]:
        """Start (or resume) the run of `request_id`: state running, attempts + 1; returns the row."""
        now = time.time()
        with self._lock:
            self._conn.execute(
                "INSERT INTO flow_runs VALUES (?, 'running', '', 1, ?, ?) ON CONFLICT(request_id) DO UPDATE SET "
                "state='running', reason='', attempts=attempts+1, updated_at=excluded.updated_at",
                (request_id, now, now),
            )
        return self.run(request_id) or {}

    def set_state(self, request_id: str, state: str, reason: str = "") -> None:
        assert state in FLOW_STATES, state
        with self._lock:
            self._conn.execute(
                "UPDATE flow_runs SET state=?, reason=?, updated_at=? WHERE request_id=?",
                (state, reason[:2000], time.time(), request_id),
            )

    def run(self, request_id: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT * FROM flow_runs WHERE request_id=?", (request_id,)).fetchone()
        return dict(row) | {"steps": self.steps(request_id)} if row else None

    def runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn.execute("SELECT * FROM flow_runs ORDER BY updated_at DESC")]

    def steps(self, request_id: str) -> dict[str, Any]:
        rows = self._conn.execute(
            "SELECT step, result FROM flow_steps WHERE request_id=? ORDER BY finished_at", (request_id,)
        )
        return {r["step"]: json.loads(r["result"]) for r in rows}

    def done(self, request_id: str, step: str) -> dict[str, Any] | None:
        """The recorded result of `step`, or None if it has not finished."""
        row = self._conn.execute(
            "SELECT result FROM flow_steps WHERE request_id=? AND step=?", (request_id, step)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def record(self, request_id: str, step: str, result: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO flow_steps VALUES (?,?,?,?)",
                (request_id, step, json.dumps(result, sort_keys=True), time.time()),
            )
        return result

    def forget(self, request_id: str, step: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM flow_steps WHERE request_id=? AND step=?", (request_id, step))

    def close(self) -> None:
        self._conn.close()

"""The fleet's state in SQLite: one file, WAL journal, one writer at a time, every change in a transaction.

A busy or locked database, or a full disk, surfaces as a FleetError that says what to do, and the
transaction is rolled back, so nothing is half-applied. The schema is created on first use and versioned.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from edgeml.errors import EdgemlError

__all__ = ["Database", "FleetBusyError", "FleetConflictError", "FleetError", "FleetNotFoundError"]

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, target TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '{}', runtimes TEXT NOT NULL DEFAULT '{}',
    agent_version TEXT, free_storage INTEGER, current_sha TEXT, current_version TEXT, current_release INTEGER,
    state TEXT, online INTEGER NOT NULL DEFAULT 0, first_seen REAL NOT NULL, last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (
    sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, release INTEGER NOT NULL,
    target TEXT NOT NULL, size INTEGER NOT NULL, manifest TEXT NOT NULL, published_at REAL NOT NULL,
    UNIQUE (name, version, target)
);
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, artifact_sha TEXT NOT NULL REFERENCES artifacts(sha256), selector TEXT NOT NULL,
    plan TEXT NOT NULL, state TEXT NOT NULL, wave INTEGER NOT NULL DEFAULT -1, wave_started_at REAL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS executions (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id), device_id TEXT NOT NULL REFERENCES devices(id),
    wave INTEGER NOT NULL, state TEXT NOT NULL, previous_sha TEXT, exposed_at REAL, deadline REAL,
    finished_at REAL, reason TEXT NOT NULL DEFAULT '', PRIMARY KEY (rollout_id, device_id)
);
CREATE TABLE IF NOT EXISTS rollout_events (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id), at REAL NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS rollout_events_by_rollout ON rollout_events (rollout_id, at);
CREATE TABLE IF NOT EXISTS desired (
    device_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL, artifact_sha TEXT NOT NULL, rollout_id TEXT NOT NULL,
    allow_rollback INTEGER NOT NULL, issued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS telemetry (
    device_id TEXT NOT NULL, seq INTEGER NOT NULL, artifact_sha TEXT, release INTEGER, period_start REAL NOT NULL,
    period_end REAL NOT NULL, received_at REAL NOT NULL, latency TEXT NOT NULL, calls INTEGER NOT NULL,
    errors INTEGER NOT NULL, drift TEXT NOT NULL, classes TEXT NOT NULL, labelled INTEGER NOT NULL DEFAULT 0,
    correct INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (device_id, seq)
);
CREATE TABLE IF NOT EXISTS events (
    device_id TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL, step TEXT NOT NULL,
    ok INTEGER NOT NULL, reason TEXT NOT NULL, artifact TEXT, release INTEGER, rollout_id TEXT,
    PRIMARY KEY (device_id, seq)
);
CREATE TABLE IF NOT EXISTS rejected (reason TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS retrain_requests (
    id TEXT PRIMARY KEY, artifact_sha TEXT NOT NULL, input TEXT NOT NULL, feature INTEGER NOT NULL,
    devices TEXT NOT NULL, max_psi REAL NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'open', UNIQUE (artifact_sha, input, feature)
);
CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY, a_sha TEXT NOT NULL, b_sha TEXT NOT NULL, split REAL NOT NULL, selector TEXT NOT NULL,
    metrics TEXT NOT NULL, created_at REAL NOT NULL, ended_at REAL, outcome TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS experiment_devices (
    experiment_id TEXT NOT NULL REFERENCES experiments(id), device_id TEXT NOT NULL, arm TEXT NOT NULL,
    PRIMARY KEY (experiment_id, device_id)
);
"""

_MIGRATIONS = {  # version → the statements that bring it to version + 1
    1: (
        "ALTER TABLE experiments ADD COLUMN ended_at REAL",
        "ALTER TABLE experiments ADD COLUMN outcome TEXT NOT NULL DEFAULT ''",
    ),
}


class FleetError(EdgemlError):
    """The fleet cannot do what was asked; the message says why and what to do."""


class FleetNotFoundError(FleetError):
    """The rollout, experiment, artifact or request named by its id does not exist."""


class FleetConflictError(FleetError):
    """The request is valid but the fleet's current state refuses it (e.g. resuming a running rollout)."""


class FleetBusyError(FleetError):
    """The database is locked by another writer or its disk is full: nothing changed; retry later."""


class Database:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()  # NOTE: one writer; SQLite connections are shared across threads here
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise FleetError(
                f"cannot open the fleet database {self.path}: {exc}",
                "check the path and permissions; it must be an SQLite file",
            ) from exc

    def _check_version(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise FleetError(
                f"{self.path} has schema version {version}; this edgeml knows up to {SCHEMA_VERSION}",
                "upgrade edgeml to the version that wrote this database",
            )
        for step in range(version, SCHEMA_VERSION):
            with self.transaction() as tx:  # NOTE: each step all or nothing, its version bump included
                for statement in _MIGRATIONS[step]:
                    tx.execute(statement)
                tx.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(step + 1),))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error (locked, full disk, a bug): all or nothing."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _error(self.path, exc) from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise _error(self.path, exc) from exc
                raise

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise _error(self.path, exc) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _error(path: Path, exc: sqlite3.OperationalError) -> FleetError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return FleetBusyError(
            f"the fleet database {path} is locked by another writer ({text}); nothing was changed",
            "retry; if it persists, another process holds a long transaction",
        )
    if "full" in text or "disk" in text:
        return FleetBusyError(f"the disk holding {path} is full ({text}); nothing was changed", "free some space")
    return FleetError(
        f"fleet database error on {path}: {text}",
        f"check that {path} is the fleet's database and intact (`sqlite3 {path} 'PRAGMA integrity_check'`)",
    )

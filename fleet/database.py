"""The fleet's state behind one interface, `Database`: SQLite (one file, the one-machine default) or PostgreSQL
(several fleet instances on one fleet), chosen by the target's form — a path or `sqlite:///path`, or
`postgresql://…`.

Both backends hold the same schema, brought up to date on open by numbered migrations recorded in a
`schema_version` table (one row per applied step, each step one transaction). Every change is a
transaction, all or nothing, and writers take turns (SQLite's BEGIN IMMEDIATE; PostgreSQL a transaction-level
advisory lock), so a read-then-write inside a transaction sees every earlier commit of every instance. A busy
or unreachable database, or a full disk, surfaces as a FleetBusyError that says what to do, and nothing is
half-applied.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from edgeml.errors import EdgemlError

__all__ = [
    "SCHEMA_VERSION",
    "Connection",
    "Database",
    "FleetBusyError",
    "FleetConflictError",
    "FleetError",
    "FleetNotFoundError",
    "backend_of",
]

# NOTE: DDL is written once, in SQLite's words; the PostgreSQL backend maps REAL → DOUBLE PRECISION and
# INTEGER → BIGINT (timestamps are epoch seconds with sub-second digits; sizes exceed 2**31).
_SCHEMA_1 = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, target TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '{}', runtimes TEXT NOT NULL DEFAULT '{}',
    agent_version TEXT, free_storage INTEGER, current_sha TEXT, current_version TEXT, current_release INTEGER,
    state TEXT, online INTEGER NOT NULL DEFAULT 0, first_seen REAL NOT NULL, last_seen REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS artifacts (
    sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, release INTEGER NOT NULL,
    target TEXT NOT NULL, size INTEGER NOT NULL, manifest TEXT NOT NULL, published_at REAL NOT NULL,
    UNIQUE (name, version, target)
)""",
    """CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, artifact_sha TEXT NOT NULL REFERENCES artifacts(sha256), selector TEXT NOT NULL,
    plan TEXT NOT NULL, state TEXT NOT NULL, wave INTEGER NOT NULL DEFAULT -1, wave_started_at REAL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, reason TEXT NOT NULL DEFAULT ''
)""",
    """CREATE TABLE IF NOT EXISTS executions (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id), device_id TEXT NOT NULL REFERENCES devices(id),
    wave INTEGER NOT NULL, state TEXT NOT NULL, previous_sha TEXT, exposed_at REAL, deadline REAL,
    finished_at REAL, reason TEXT NOT NULL DEFAULT '', PRIMARY KEY (rollout_id, device_id)
)""",
    """CREATE TABLE IF NOT EXISTS desired (
    device_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL, artifact_sha TEXT NOT NULL, rollout_id TEXT NOT NULL,
    allow_rollback INTEGER NOT NULL, issued_at REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS telemetry (
    device_id TEXT NOT NULL, seq INTEGER NOT NULL, artifact_sha TEXT, release INTEGER, period_start REAL NOT NULL,
    period_end REAL NOT NULL, received_at REAL NOT NULL, latency TEXT NOT NULL, calls INTEGER NOT NULL,
    errors INTEGER NOT NULL, drift TEXT NOT NULL, classes TEXT NOT NULL, labelled INTEGER NOT NULL DEFAULT 0,
    correct INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (device_id, seq)
)""",
    """CREATE TABLE IF NOT EXISTS events (
    device_id TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL, step TEXT NOT NULL,
    ok INTEGER NOT NULL, reason TEXT NOT NULL, artifact TEXT, release INTEGER, rollout_id TEXT,
    PRIMARY KEY (device_id, seq)
)""",
    "CREATE TABLE IF NOT EXISTS rejected (reason TEXT PRIMARY KEY, count INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS retrain_requests (
    id TEXT PRIMARY KEY, artifact_sha TEXT NOT NULL, input TEXT NOT NULL, feature INTEGER NOT NULL,
    devices TEXT NOT NULL, max_psi REAL NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'open', UNIQUE (artifact_sha, input, feature)
)""",
    """CREATE TABLE IF NOT EXISTS experiments (
    id TEXT PRIMARY KEY, a_sha TEXT NOT NULL, b_sha TEXT NOT NULL, split REAL NOT NULL, selector TEXT NOT NULL,
    metrics TEXT NOT NULL, created_at REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS experiment_devices (
    experiment_id TEXT NOT NULL REFERENCES experiments(id), device_id TEXT NOT NULL, arm TEXT NOT NULL,
    PRIMARY KEY (experiment_id, device_id)
)""",
)

# NOTE: append only: step N brings a database from version N-1 to N; a released step is never edited
MIGRATIONS: dict[int, tuple[str, tuple[str, ...]]] = {
    1: ("the fleet's tables", _SCHEMA_1),
    2: (
        "experiments end with an outcome",
        (
            "ALTER TABLE experiments ADD COLUMN ended_at REAL",
            "ALTER TABLE experiments ADD COLUMN outcome TEXT NOT NULL DEFAULT ''",
        ),
    ),
    3: (
        "rollouts keep an audit trail (who created, aborted, took a fleet back)",
        (
            """CREATE TABLE IF NOT EXISTS rollout_events (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id), seq INTEGER NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,
    actor TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', PRIMARY KEY (rollout_id, seq)
)""",
        ),
    ),
}
MIGRATIONS[4] = (
    "benchmark jobs on devices and their per-device results",
    (
        """CREATE TABLE IF NOT EXISTS bench_jobs (
    id TEXT PRIMARY KEY, artifact TEXT NOT NULL, baseline TEXT, selector TEXT NOT NULL, settings TEXT NOT NULL,
    created_at REAL NOT NULL, deadline REAL NOT NULL
)""",
        """CREATE TABLE IF NOT EXISTS bench_results (
    job_id TEXT NOT NULL REFERENCES bench_jobs(id), device_id TEXT NOT NULL, sequence INTEGER NOT NULL,
    artifact_sha TEXT, baseline_sha TEXT, state TEXT NOT NULL, sent_at REAL, finished_at REAL,
    reason TEXT NOT NULL DEFAULT '', result TEXT, PRIMARY KEY (job_id, device_id)
)""",
    ),
)
SCHEMA_VERSION = max(MIGRATIONS)
_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
)


class FleetError(EdgemlError):
    """The fleet cannot do what was asked; the message says why and what to do."""


class FleetNotFoundError(FleetError):
    """The rollout, experiment, artifact or request named by its id does not exist."""


class FleetConflictError(FleetError):
    """The request is valid but the fleet's current state refuses it (e.g. resuming a running rollout)."""


class FleetBusyError(FleetError):
    """The database is locked by another writer, unreachable, or its disk is full: nothing changed; retry later."""


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What a transaction hands its body: `execute(sql, params)` with `?` placeholders, as sqlite3 has it.
    Rows index by position and by column name (`row[0]`, `row["state"]`, `dict(row)`)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...


def backend_of(target: str | Path) -> str:
    """'sqlite' or 'postgresql' for a database target: a path, `sqlite:///path`, or `postgresql://…`."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql"
    if "://" in text and not text.startswith("sqlite://"):
        raise FleetError(
            f"unknown fleet database {text!r}",
            "use a file path or sqlite:///path for SQLite, or postgresql://user@host:5432/db for PostgreSQL",
        )
    return "sqlite"


class Database:
    """The fleet's state. `Database(target)` opens the backend the target names (see `backend_of`);
    `transaction()` is all or nothing, `query()` reads (or runs one statement on its own)."""

    backend: str = ""
    url: str = ""  # what opens this database again (another instance, `fleet db copy`)

    def __new__(cls, target: str | Path, *args: Any, **kwargs: Any) -> Database:
        if cls is Database:
            cls = _backends()[backend_of(target)]
        return super().__new__(cls)

    @contextlib.contextmanager
    def transaction(self, exclusive: bool = True, durable: bool = True) -> Iterator[Connection]:
        """All or nothing. `exclusive=False`: the body only writes rows whose result does not depend on what
        it read (an idempotent insert, an upsert, one UPDATE), so it need not wait for the writers' turn:
        intake from several instances commits in parallel. `durable=False`: a crash of the database server
        may lose it (telemetry, counters); it is never half-applied. SQLite ignores both (one writer, and
        its WAL with synchronous=NORMAL is already that durable)."""
        raise NotImplementedError
        yield

    def batch(self) -> contextlib.AbstractContextManager[Connection]:
        """One transaction around many: each transaction opened inside it (by this thread) is a savepoint, all
        or nothing on its own, and all commit together: one commit (one disk flush) for a burst of intake.
        It takes the writers' turn first: an inner transaction that needed it later, after the batch's
        writes locked rows, could deadlock with another instance's writer waiting on those rows."""
        return self.transaction(exclusive=True)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def fenced(self, check: Callable[[Connection], None]) -> Iterator[None]:
        """While inside, each transaction this thread opens runs `check(tx)` right after it holds the writers'
        lock, before its body: the driving instance's lease proves it still holds the lease, or the
        transaction ends with check's error and changes nothing (a deposed leader's late step)."""
        fences = self.__dict__.setdefault("_fences", threading.local())
        fences.check = check
        try:
            yield
        finally:
            fences.check = None

    def _check_fence(self, tx: Connection) -> None:
        fences = self.__dict__.get("_fences")
        check = getattr(fences, "check", None) if fences is not None else None
        if check is not None:
            check(tx)

    def schema_version(self) -> int:
        rows = self.query("SELECT MAX(version) FROM schema_version")
        return int(rows[0][0] or 0)

    def _migrate(self) -> None:
        """Apply every step this database lacks, each in its own transaction with its version row."""
        with self.transaction() as tx:
            tx.execute(_VERSION_TABLE)
            tx.execute(_SCHEMA_1[0])  # NOTE: meta, to read the version an edgeml before schema_version wrote
            if tx.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0:
                _adopt_meta_version(tx)
        for step in range(1, SCHEMA_VERSION + 1):
            with self.transaction() as tx:  # NOTE: re-read inside: another instance may have applied it meanwhile
                current = tx.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
                if current > SCHEMA_VERSION:
                    raise FleetError(
                        f"{self.url} has schema version {current}; this edgeml knows up to {SCHEMA_VERSION}",
                        "upgrade edgeml to the version that wrote this database",
                    )
                if current >= step:
                    continue
                description, statements = MIGRATIONS[step]
                for statement in statements:
                    tx.execute(self._ddl(statement))
                tx.execute("INSERT INTO schema_version VALUES (?,?,?)", (step, description, time.time()))
                # NOTE: meta mirrors it, so an edgeml from before schema_version refuses a newer database
                tx.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                    (str(step),),
                )

    def _ddl(self, statement: str) -> str:
        return statement


def _adopt_meta_version(tx: Connection) -> None:
    """A database written before schema_version existed keeps its version in meta: record those steps as done."""
    row = tx.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    for step in range(1, int(row[0]) + 1 if row else 1):
        description = MIGRATIONS[step][0] if step in MIGRATIONS else "written by a newer edgeml"
        tx.execute("INSERT INTO schema_version VALUES (?,?,?)", (step, description, time.time()))


def _backends() -> dict[str, type[Database]]:
    """The backends, by `backend_of` name (imported here: each imports this module)."""
    from edgeml.fleet.postgres_database import PostgresDatabase
    from edgeml.fleet.sqlite_database import SqliteDatabase

    return {"sqlite": SqliteDatabase, "postgresql": PostgresDatabase}

"""The fleet's state in SQLite: one file, WAL journal, one writer at a time (BEGIN IMMEDIATE), every change in a
transaction. The one-machine default: one `fleet serve` per file (see fleet/instance_lease.py)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from edgeml.fleet.database import Database, FleetBusyError, FleetError

__all__ = ["SqliteDatabase", "sqlite_path"]


def sqlite_path(target: str | Path) -> Path:
    """The file a target names: a plain path or `sqlite:///path` (`sqlite:////abs/path` for an absolute one)."""
    text = str(target)
    return Path(text[len("sqlite:///") :]) if text.startswith("sqlite:///") else Path(text)


class SqliteDatabase(Database):
    backend = "sqlite"

    def __init__(self, target: str | Path) -> None:
        self.path = sqlite_path(target)
        self.url = str(self.path)
        self._lock = threading.RLock()  # NOTE: one writer; SQLite connections are shared across threads here
        self._depth = 0  # NOTE: nesting of the open transaction (inner ones are savepoints)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise FleetError(
                f"cannot open the fleet database {self.path}: {exc}",
                "check the path and permissions; it must be an SQLite file",
            ) from exc

    @contextlib.contextmanager
    def transaction(self, exclusive: bool = True, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error (locked, full disk, a bug): all or nothing."""
        with self._lock:
            if self._depth:
                with self._savepoint():
                    yield self._conn
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _error(self.path, exc) from exc
            self._depth += 1
            try:
                self._check_fence(self._conn)
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise _error(self.path, exc) from exc
                raise
            finally:
                self._depth -= 1

    @contextlib.contextmanager
    def _savepoint(self) -> Iterator[None]:
        """A transaction inside this thread's open one: all or nothing within it, committed with it."""
        name = f"sp{self._depth}"
        self._conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            self._check_fence(self._conn)
            yield
            self._conn.execute(f"RELEASE {name}")
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            raise
        finally:
            self._depth -= 1

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
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

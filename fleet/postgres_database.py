"""The fleet's state in PostgreSQL (psycopg 3): the same schema and behaviour as SQLite, for several fleet
instances on one fleet.

The code above speaks SQLite's dialect where both agree (`?` placeholders, `INSERT … ON CONFLICT`); this module
maps the placeholders and the DDL's types. Writers take turns as in SQLite: each transaction first takes a
transaction-level advisory lock, so a read-then-write inside it sees every earlier commit of every instance,
and a lost connection rolls back what it had not committed. One connection per Database, shared across
threads under a lock (as the SQLite one is); after the server goes away, the next call reconnects.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import threading
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from edgeml.fleet.database import Database, FleetBusyError, FleetError

__all__ = ["PostgresDatabase", "lock_namespace", "pg_connect"]

LOCK_TIMEOUT = "5s"  # NOTE: as SQLite's busy timeout: a writer waiting longer gets FleetBusyError
WRITER_LOCK = 1  # the second key of the advisory locks, under the fleet's namespace (see instance_lease.py)


def _psycopg():
    try:
        import psycopg
    except ImportError as exc:
        raise FleetError(
            "the fleet database is PostgreSQL but psycopg is not installed",
            "pip install 'edgeml[postgres]' (psycopg 3)",
        ) from exc
    return psycopg


def pg_connect(url: str, role: str = "db"):
    """An autocommit psycopg connection that names this process (pg_stat_activity.application_name) and
    notices a dead peer within ~15 s (TCP keepalives), with rows that index by position and by name."""
    psycopg = _psycopg()
    name = f"edgeml-fleet {role} {socket.gethostname()} pid {os.getpid()}"
    try:
        conn = psycopg.connect(
            url, autocommit=True, application_name=name[:63], connect_timeout=10,
            keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
            row_factory=_row_factory,
        )  # fmt: skip
    except psycopg.Error as exc:
        raise FleetBusyError(
            f"cannot connect to the fleet database {_safe(url)}: {str(exc).strip()}",
            "check that PostgreSQL runs and the URL (user, host, port, database) is right",
        ) from exc
    conn.adapters.register_dumper(bool, _bool_dumper(psycopg))
    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    return conn


def lock_namespace(conn) -> int:
    """The first key of the fleet's advisory locks: its database and search_path, so fleets in other
    schemas of one server (tests, staging) never contend."""
    where = conn.execute("SELECT current_database() || '/' || current_setting('search_path')").fetchone()[0]
    return zlib.crc32(f"edgeml-fleet:{where}".encode()) & 0x7FFFFFFF


class PostgresDatabase(Database):
    backend = "postgresql"

    def __init__(self, target: str) -> None:
        self.url = str(target)
        self._lock = threading.RLock()
        self._conn = None
        self._depth, self._locked = 0, False  # NOTE: nesting of the open transaction; the writers' lock held
        self._connection()
        self._migrate()

    def _connection(self):
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = pg_connect(self.url)
            self._namespace = lock_namespace(self._conn)
        return self._conn

    @contextlib.contextmanager
    def transaction(self, exclusive: bool = True, durable: bool = True) -> Iterator[_Translated]:
        """BEGIN; the writers' lock (unless not `exclusive`); … COMMIT, or ROLLBACK on any error."""
        psycopg = _psycopg()
        with self._lock:
            outer, took_lock = self._depth == 0, False
            try:
                conn = self._connection() if outer else self._conn
                with conn.transaction():  # NOTE: inside another transaction of this thread: a SAVEPOINT
                    self._depth += 1
                    try:
                        if exclusive and not self._locked:
                            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (self._namespace, WRITER_LOCK))
                            self._locked = took_lock = True
                        if not durable and outer:
                            conn.execute("SET LOCAL synchronous_commit = off")
                        tx = _Translated(conn)
                        self._check_fence(tx)
                        yield tx
                    except BaseException:
                        if took_lock:
                            self._locked = False  # NOTE: a rolled-back savepoint releases what it locked
                        raise
                    finally:
                        self._depth -= 1
            except psycopg.Error as exc:
                raise _error(self.url, exc) from exc
            finally:
                if outer:
                    self._locked = False

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        psycopg = _psycopg()
        with self._lock:
            try:
                cur = _Translated(self._connection()).execute(sql, params)
                return cur.fetchall() if cur.description is not None else []
            except psycopg.Error as exc:
                raise _error(self.url, exc) from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    def _ddl(self, statement: str) -> str:
        return re.sub(r"\bINTEGER\b", "BIGINT", re.sub(r"\bREAL\b", "DOUBLE PRECISION", statement))


class _Translated:
    """A psycopg connection that takes SQLite's `?` placeholders."""

    def __init__(self, conn) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()):
        return self._conn.execute(_placeholders(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(_placeholders(sql), rows)


@functools.lru_cache(maxsize=1024)
def _placeholders(sql: str) -> str:
    """SQLite's words → PostgreSQL's: `x IS ?` (equal, NULL included) → `x IS NOT DISTINCT FROM %s`, `?` → `%s`,
    `rowid` (insertion order) → `ctid` (a row's place in its table: insertion order in the append-only tables
    that order by it, e.g. rollout_events)."""
    # NOTE: the fleet's SQL has no `?` or `%` inside literals; `%` is doubled so psycopg reads it as text
    sql = re.sub(r"\browid\b", "ctid", sql)
    sql = re.sub(r"\bIS\s+NOT\s+\?", "IS DISTINCT FROM ?", sql)
    sql = re.sub(r"\bIS\s+\?", "IS NOT DISTINCT FROM ?", sql)
    return sql.replace("%", "%%").replace("?", "%s")


class Row(tuple):
    """One result row: by position (`row[0]`, unpacking) or by column name (`row["state"]`, `dict(row)`),
    as sqlite3.Row."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key):
        return super().__getitem__(self._index[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor):
    index = {c.name: i for i, c in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


@functools.lru_cache(maxsize=1)
def _bool_dumper(psycopg):
    """Python bools as 0/1 in the INTEGER columns that hold flags (as SQLite stores them)."""
    from psycopg.adapt import Dumper

    class BoolAsInt(Dumper):
        oid = psycopg.adapters.types["int8"].oid

        def dump(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

    return BoolAsInt


def _error(url: str, exc: Exception) -> FleetError:
    psycopg = _psycopg()
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return FleetBusyError(
            f"the fleet database {_safe(url)} is locked by another writer ({text}); nothing was changed",
            "retry; if it persists, another process holds a long transaction (see pg_stat_activity)",
        )
    if isinstance(exc, psycopg.OperationalError):
        return FleetBusyError(
            f"lost the fleet database {_safe(url)} ({text}); nothing was changed",
            "retry once PostgreSQL is reachable again; the next call reconnects",
        )
    return FleetError(f"fleet database error on {_safe(url)}: {text}", "a bug in edgeml or a changed schema: report it")


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)

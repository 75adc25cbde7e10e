"""Copy a whole fleet from one database to another (SQLite → PostgreSQL, or back): every table, rows as they are.

The source is read inside one of its transactions (a consistent snapshot: writers wait on SQLite) and the
destination written in one transaction, so a copy that fails leaves the destination as it was. The
destination must be empty: a copy never merges two fleets. Both are brought to this edgeml's schema first.
"""

from __future__ import annotations

from collections.abc import Callable

from edgeml.fleet.database import Database, FleetConflictError

__all__ = ["TABLES", "copy_database"]

# NOTE: parents before children (foreign keys); meta and schema_version belong to each database itself
TABLES = (
    "artifacts",
    "devices",
    "rollouts",
    "rollout_events",
    "executions",
    "desired",
    "telemetry",
    "events",
    "rejected",
    "retrain_requests",
    "experiments",
    "experiment_devices",
    "bench_jobs",
    "bench_results",
)
BATCH = 2000


def copy_database(source: Database, dest: Database, progress: Callable[[str, int], None] | None = None) -> dict:
    """Copy every fleet table from `source` into the empty `dest`; rows copied per table. (A test checks that
    TABLES names every table the migrations create.)"""
    _refuse_non_empty(dest)
    copied: dict[str, int] = {}
    with source.transaction() as src, dest.transaction() as dst:
        for table in TABLES:
            cur = src.execute(f"SELECT * FROM {table}")
            copied[table] = 0
            while rows := cur.fetchmany(BATCH):
                columns = list(rows[0].keys())
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})"
                dst.executemany(sql, [tuple(r) for r in rows])
                copied[table] += len(rows)
            if progress is not None:
                progress(table, copied[table])
    return copied


def _refuse_non_empty(dest: Database) -> None:
    held = {t: n for t in TABLES if (n := dest.query(f"SELECT COUNT(*) FROM {t}")[0][0])}
    if held:
        listed = ", ".join(f"{n} {t}" for t, n in held.items())
        raise FleetConflictError(
            f"the destination {dest.url} already holds a fleet ({listed}); a copy never merges two fleets",
            "copy into an empty database (or a new PostgreSQL schema: ?options=-csearch_path%3Dname)",
        )

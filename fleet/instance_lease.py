"""Which `fleet serve` may run, and which one drives the fleet: the lease.

Every instance takes MQTT intake (devices' hello, status, events, telemetry: split by the broker's shared
subscription), and each of those writes is a conditional, idempotent transaction, so any instance may apply
any message. What must happen once — rollout steps, deadlines, retraining scans, chunk streams, the desired
state outbox — only the instance holding the lease does.

    SQLite        one instance per file: an exclusive lock on `<db>.serve.lock`; a second `fleet serve`
                  is refused with the first one's pid, and --share-group is refused (instances could not
                  share state). The one instance always holds the lease.
    PostgreSQL    session-level advisory locks on a connection of the lease's own, under the fleet's
                  namespace (its database and search_path): `presence`, shared by every instance of one
                  --share-group (exclusive for an instance without one, so it runs alone), and `leader`,
                  which one instance holds. The others try for it every `poll_s`. A killed leader's
                  connection closes with its process and PostgreSQL frees the lock at once: another takes
                  over within poll_s + one tick. A leader whose host vanishes is dropped by TCP keepalives
                  (~15 s, see pg_connect). A leader that loses its lease connection stops driving at once,
                  and every step it takes is fenced: its transaction first checks, under the writers' lock,
                  that its lease session still holds `leader`, so a deposed leader's late step changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

from edgeml.fleet.database import Connection, Database, FleetConflictError, FleetError

__all__ = ["FileLease", "FleetLeaseLostError", "InstanceLease", "PostgresLease", "open_lease"]

log = logging.getLogger(__name__)
PRESENCE, LEADER = 2, 3  # second keys of the advisory locks (1 is the writers' lock, postgres_database.py)
POLL_S = 1.0


class FleetLeaseLostError(FleetError):
    """This instance no longer holds the lease: another drives the fleet now; the step changed nothing."""


class InstanceLease:
    """The interface: `is_leader()` before driving (cheap; call it every tick), `fence` for Database.fenced."""

    def is_leader(self) -> bool:
        raise NotImplementedError

    def fence(self, tx: Connection) -> None:
        """Raise FleetLeaseLostError unless this instance still holds the lease (run inside a transaction)."""

    def close(self) -> None:
        """Give the lease up (another instance takes over on its next poll)."""


def open_lease(db: Database, share_group: str | None, poll_s: float = POLL_S) -> InstanceLease:
    """Join the fleet `db` holds as one serving instance, or a FleetConflictError saying why not."""
    return {"sqlite": FileLease, "postgresql": PostgresLease}[db.backend](db, share_group, poll_s)


class FileLease(InstanceLease):
    def __init__(self, db: Database, share_group: str | None, poll_s: float = POLL_S) -> None:
        import fcntl

        if share_group is not None:
            raise FleetConflictError(
                f"--share-group runs several instances on one fleet, but {db.url} is SQLite: instances on "
                "other machines cannot share it, and nothing would elect which one drives rollouts",
                "drop --share-group to run one instance, or move the fleet to PostgreSQL "
                f"(`edgeml fleet db copy --from {db.url} --to postgresql://…`) and start each instance with "
                "--db postgresql://… --share-group NAME",
            )
        self.path = Path(f"{db.url}.serve.lock")
        self._file = open(self.path, "a+")  # noqa: SIM115  NOTE: held open for the process's life: it is the lock
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise FleetConflictError(
                f"{db.url} is already served by {holder}; SQLite takes one `fleet serve` at a time",
                "stop that one first; to run several instances, move the fleet to PostgreSQL "
                "(`edgeml fleet db copy`) and start each with --share-group NAME",
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"fleet serve pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}")
        self._file.flush()

    def is_leader(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()  # NOTE: closing drops the flock; the file stays (its text names the last holder)


class PostgresLease(InstanceLease):
    def __init__(self, db: Database, share_group: str | None, poll_s: float = POLL_S) -> None:
        self.url, self.group, self.poll_s = db.url, share_group, poll_s
        self._conn = None
        self._leader = False
        self._next_check = 0.0
        self._join()

    def _join(self) -> None:
        from edgeml.fleet.postgres_database import lock_namespace, pg_connect

        self._conn = pg_connect(self.url, role=f"lease group={self.group or '-'}")
        self._ns = lock_namespace(self._conn)
        self.pid = self._conn.info.backend_pid
        if self.group is None:
            taken = self._try("pg_try_advisory_lock", PRESENCE)
            if not taken:
                self._refuse("run several instances on one fleet: start every one of them with --share-group NAME")
        else:
            others = [h for h in self.holders(PRESENCE) if f"group={self.group} " not in h]
            if others or not self._try("pg_try_advisory_lock_shared", PRESENCE):
                self._refuse(f"start every instance with the same --share-group {self.group}, or stop the other")

    def _try(self, function: str, key: int) -> bool:
        return bool(self._conn.execute(f"SELECT {function}(%s, %s)", (self._ns, key)).fetchone()[0])

    def holders(self, key: int) -> list[str]:
        """Who holds lock `key` besides this instance: pg_stat_activity's application_name of each."""
        rows = self._conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 2 "
            "AND l.granted AND l.pid <> pg_backend_pid()",
            (self._ns, key),
        ).fetchall()
        return sorted(r[0] for r in rows)

    def _refuse(self, fix: str) -> None:
        who = "; ".join(self.holders(PRESENCE)) or "another instance"
        self._conn.close()
        raise FleetConflictError(f"this fleet database is already served by {who} ({self.url})", fix)

    def is_leader(self) -> bool:
        """Whether this instance leads; checked against PostgreSQL at most every poll_s (between checks a
        lost lease goes unnoticed here, but not by the fence: steps stay once-only)."""
        if time.monotonic() < self._next_check:
            return self._leader
        self._next_check = time.monotonic() + self.poll_s
        if self._leader and not self._alive():
            self._leader = False
            log.error("lost the fleet lease (its PostgreSQL connection dropped): stopped driving rollouts")
        elif not self._leader:
            self._leader = self._take()
            if self._leader:
                log.warning("took the fleet lease: this instance drives rollouts, deadlines and chunk streams")
        return self._leader

    def _alive(self) -> bool:
        try:
            self._conn.execute("SELECT 1")
            return True
        except Exception:  # NOTE: any failure of the lease connection means the lock may be gone
            return False

    def _take(self) -> bool:
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._join()  # NOTE: a new session holds nothing: rejoin (presence) before trying for leader
            return self._try("pg_try_advisory_lock", LEADER)
        except FleetError as exc:
            log.error("cannot rejoin the fleet: %s", exc)
        except Exception as exc:  # NOTE: PostgreSQL away: try again on the next poll
            log.error("cannot reach the fleet database for the lease: %s", exc)
        return False

    def fence(self, tx: Connection) -> None:
        held = tx.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = ? AND objid::bigint = ? "
            "AND objsubid = 2 AND pid = ? AND granted",
            (self._ns, LEADER, self.pid),
        ).fetchone()
        if held is None:
            self._leader = False
            raise FleetLeaseLostError(
                "this instance lost the fleet lease before its step: another instance drives the fleet now",
                "nothing to do: the step changed nothing and the leader takes it",
            )

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()

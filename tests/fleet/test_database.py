"""The fleet database on both backends: numbered migrations recorded once, transactions inside a batch undo
only themselves, a fence that fails changes nothing, and what the URL names is what opens."""

from __future__ import annotations

import threading

import pytest

from edgeml.fleet.database import SCHEMA_VERSION, Database, FleetError, backend_of


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.close()


def reasons(db: Database) -> list[str]:
    return [r[0] for r in db.query("SELECT reason FROM rejected ORDER BY reason")]


def test_migrations_are_recorded_once_however_often_it_opens(db):
    again = Database(db.url)
    again.close()
    assert [tuple(r) for r in db.query("SELECT version FROM schema_version ORDER BY version")] == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)
    ]


def test_a_transaction_failing_inside_a_batch_undoes_only_itself(db):
    with db.batch():
        with db.transaction() as tx:
            tx.execute("INSERT INTO rejected VALUES ('a', 1)")
        with pytest.raises(ZeroDivisionError), db.transaction(exclusive=False) as tx:
            tx.execute("INSERT INTO rejected VALUES ('b', 1)")
            _ = 1 / 0
        with db.transaction() as tx:
            tx.execute("INSERT INTO rejected VALUES ('c', 1)")
    assert reasons(db) == ["a", "c"]
    with pytest.raises(RuntimeError), db.batch():
        with db.transaction() as tx:
            tx.execute("INSERT INTO rejected VALUES ('d', 1)")
        raise RuntimeError("the batch itself fails")
    assert reasons(db) == ["a", "c"]  # all of it undone


def test_a_failing_fence_stops_the_transaction_before_its_body(db):
    def deposed(tx) -> None:
        raise FleetError("lost the lease")

    with db.fenced(deposed), pytest.raises(FleetError, match="lost the lease"), db.transaction() as tx:
        tx.execute("INSERT INTO rejected VALUES ('late', 1)")
    with db.transaction() as tx:  # NOTE: outside `fenced`, and on another thread, no fence applies
        tx.execute("INSERT INTO rejected VALUES ('after', 1)")
    assert reasons(db) == ["after"]


def test_writers_on_two_connections_take_turns(db):
    """Read-then-write under the writers' turn: 2 × 20 increments from two connections, none lost."""
    other = Database(db.url)
    with db.transaction() as tx:
        tx.execute("INSERT INTO rejected VALUES ('n', 0)")

    def bump(database: Database) -> None:
        for _ in range(20):
            with database.transaction() as tx:
                (n,) = tx.execute("SELECT count FROM rejected WHERE reason='n'").fetchone()
                tx.execute("UPDATE rejected SET count=? WHERE reason='n'", (n + 1,))

    threads = [threading.Thread(target=bump, args=(d,)) for d in (db, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    other.close()
    assert db.query("SELECT count FROM rejected WHERE reason='n'")[0][0] == 40


def test_the_target_names_the_backend():
    assert backend_of("fleet.sqlite") == backend_of("sqlite:///x/fleet.sqlite") == "sqlite"
    assert backend_of("postgresql://u@h/db") == backend_of("postgres://u@h/db") == "postgresql"
    with pytest.raises(FleetError, match="unknown fleet database 'mysql://h/db'"):
        backend_of("mysql://h/db")

"""The lease between fleet instances on PostgreSQL, in one process: one leads, the others wait; when the
leader's session ends another takes over on its next poll; a deposed leader's step is fenced off."""

from __future__ import annotations

import time

import pytest

from edgeml.fleet.database import Database, FleetConflictError
from edgeml.fleet.instance_lease import FleetLeaseLostError, PostgresLease, open_lease

pytestmark = pytest.mark.postgres


@pytest.fixture
def db(postgres_url):
    database = Database(postgres_url)
    yield database
    database.close()


def test_one_leads_and_another_takes_over_when_it_goes(db):
    a, b = open_lease(db, "g", poll_s=0.1), open_lease(db, "g", poll_s=0.1)
    assert isinstance(a, PostgresLease)
    assert a.is_leader() and not b.is_leader()
    a.close()  # as a kill -9 does: the session ends, PostgreSQL frees its locks
    started = time.monotonic()
    while not b.is_leader():
        assert time.monotonic() - started < 5
        time.sleep(0.02)
    assert time.monotonic() - started < 1.0
    b.close()


def test_a_deposed_leaders_step_changes_nothing(db):
    a, b = open_lease(db, "g", poll_s=0.1), open_lease(db, "g", poll_s=0.1)
    assert a.is_leader()
    a._conn.close()  # its lease session is gone, but it has not noticed yet (between polls)
    time.sleep(0.15)
    assert b.is_leader()
    with db.fenced(a.fence), pytest.raises(FleetLeaseLostError), db.transaction() as tx:
        tx.execute("INSERT INTO rejected VALUES ('late step', 1)")
    with db.fenced(b.fence), db.transaction() as tx:
        tx.execute("INSERT INTO rejected VALUES ('step', 1)")
    assert [r[0] for r in db.query("SELECT reason FROM rejected")] == ["step"]
    b.close()


def test_who_may_join(db):
    solo = open_lease(db, None)
    with pytest.raises(FleetConflictError, match="already served by edgeml-fleet lease group=- ") as err:
        open_lease(db, None)
    assert "--share-group" in err.value.hint
    with pytest.raises(FleetConflictError):
        open_lease(db, "g")
    solo.close()
    g = open_lease(db, "g")
    with pytest.raises(FleetConflictError, match="group=g "):
        open_lease(db, "h")
    with pytest.raises(FleetConflictError):
        open_lease(db, None)
    g.close()

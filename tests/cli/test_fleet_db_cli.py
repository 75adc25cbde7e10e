"""`edgeml fleet db copy` moves a fleet from SQLite into PostgreSQL with every row as it was, refuses to merge
into a database that already holds a fleet, and `fleet db version` reads the schema version of either."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from edgeml.cli import main
from edgeml.fleet.database import SCHEMA_VERSION, Database
from edgeml.fleet.database_copy import TABLES
from edgeml.protocol import Event, Hello

pytestmark = pytest.mark.postgres


def fleet_cli(*args: str) -> str:
    result = CliRunner().invoke(main, ["fleet", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def sqlite_fleet(tmp_path, keypair, releases):
    """A SQLite fleet with devices, an artifact, a rollout one step in, events and a rejection."""
    from edgeml.artifact import load_private_key
    from edgeml.fleet import Fleet, RolloutPlan

    fleet = Fleet(tmp_path / "fleet.sqlite", tmp_path / "store", load_private_key(keypair[0]))
    now = time.time()
    for i in range(6):
        fleet.devices.on_hello(Hello(f"cam-{i:02d}", "cpu-ort", "0.1.0", 1 << 30, {"onnxruntime": "1"}), now)
    fleet.devices.set_tags("cam-00", {"site": "berlin"})
    fleet.artifacts.publish(releases["1.2.3"], now)
    plan = RolloutPlan.build("20%", "100%", "0s", "10m", [])
    fleet.rollouts.create("digits@1.2.3", "all", plan, now)
    fleet.rollouts.tick(now)
    fleet.events.record("cam-00", Event("verified", "downloading", True, 1, int(now)))
    fleet.events.reject("malformed")
    yield fleet
    fleet.db.close()


def rows(db: Database, table: str) -> list[tuple]:
    return sorted(tuple(r) for r in db.query(f"SELECT * FROM {table}"))


def test_a_sqlite_fleet_is_copied_into_postgres_row_for_row(sqlite_fleet, postgres_url):
    out = json.loads(
        fleet_cli("db", "copy", "--from", f"sqlite:///{sqlite_fleet.db.path}", "--to", postgres_url, "--json")
    )
    assert out["rows"]["devices"] == 6 and out["rows"]["executions"] == 6 and out["rows"]["desired"] >= 1
    copy = Database(postgres_url)
    try:
        assert copy.backend == "postgresql" and copy.schema_version() == SCHEMA_VERSION
        for table in TABLES:
            assert rows(copy, table) == rows(sqlite_fleet.db, table), table
    finally:
        copy.close()


def test_a_copy_never_merges_into_a_fleet(sqlite_fleet, postgres_url):
    fleet_cli("db", "copy", "--from", str(sqlite_fleet.db.path), "--to", postgres_url)
    result = CliRunner().invoke(
        main, ["fleet", "db", "copy", "--from", str(sqlite_fleet.db.path), "--to", postgres_url]
    )
    assert result.exit_code != 0
    assert "already holds a fleet (1 artifacts, 6 devices" in result.output
    assert "never merges" in result.output


def test_version_names_the_backend_and_the_applied_steps(tmp_path, postgres_url):
    for target, backend in ((str(tmp_path / "f.sqlite"), "sqlite"), (postgres_url, "postgresql")):
        out = json.loads(fleet_cli("db", "version", "--db", target, "--json"))
        assert out == {"backend": backend, "schema_version": SCHEMA_VERSION, "known": SCHEMA_VERSION}
    assert "1: the fleet's tables" in fleet_cli("db", "version", "--db", postgres_url)


def test_the_copy_knows_every_table_the_migrations_create():
    import re

    from edgeml.fleet.database import MIGRATIONS

    created = {
        m
        for _, statements in MIGRATIONS.values()
        for s in statements
        for m in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", s)
    }
    assert created - {"meta"} == set(TABLES)

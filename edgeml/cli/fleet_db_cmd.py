"""`edgeml fleet db`: the fleet database itself — where it is, its schema version, and copying a fleet into
another database (SQLite → PostgreSQL when one machine is no longer enough)."""

from __future__ import annotations

import click
from rich.table import Table

from edgeml.cli.output import console, errors_handled, print_json, print_table

__all__ = ["db"]


@click.group("db")
def db() -> None:
    """The fleet database: its schema version; copy a fleet into another database."""


@db.command("copy")
@click.option("--from", "source", required=True, metavar="DB", help="sqlite:///path (or a path), postgresql://…")
@click.option("--to", "dest", required=True, metavar="DB", help="An empty database: postgresql://user@host/db …")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def copy(source, dest, as_json) -> None:
    """Copy every device, artifact record, rollout, execution, desired state, event and telemetry batch from
    --from into the empty --to, in one transaction. Stop `fleet serve` first; the artifact store folder is
    not copied (point --store at the same folder, or copy it beside)."""
    from edgeml.fleet.database import Database
    from edgeml.fleet.database_copy import copy_database

    src, dst = Database(source), Database(dest)
    try:
        copied = copy_database(src, dst)
    finally:
        src.close()
        dst.close()
    if as_json:
        print_json({"from": src.url, "to": dst.url, "rows": copied})
        return
    table = Table("table", "rows")
    for name, n in copied.items():
        table.add_row(name, str(n))
    print_table(table)
    console.print(f"[green]✓[/] copied {sum(copied.values())} rows from {src.url} to {dst.url}")


@db.command("version")
@click.option("--db", "target", required=True, metavar="DB", envvar="EDGEML_FLEET_DB", help="The fleet database.")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def version(target, as_json) -> None:
    """The database's backend and schema version (opening it applies the migrations this edgeml has)."""
    from edgeml.fleet.database import SCHEMA_VERSION, Database

    database = Database(target)
    try:
        steps = [tuple(r) for r in database.query("SELECT version, description FROM schema_version ORDER BY version")]
    finally:
        database.close()
    if as_json:
        print_json({"backend": database.backend, "schema_version": steps[-1][0], "known": SCHEMA_VERSION})
        return
    console.print(f"{database.backend} database {database.url}: schema version {steps[-1][0]}")
    for number, description in steps:
        console.print(f"  {number}: {description}")

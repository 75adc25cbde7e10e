"""What every `edgeml fleet` command shares: the database, store and key options, and opening the fleet."""

from __future__ import annotations

import os

import click

from edgeml.locations import default_key_path

__all__ = ["fleet_options", "open_fleet"]


def fleet_options(fn):
    fn = click.option(
        "--db",
        default=lambda: os.environ.get("EDGEML_FLEET_DB", "fleet.sqlite"),
        show_default="fleet.sqlite",
        help="Fleet database: a file path or sqlite:///path, or postgresql://user@host:5432/db for several "
        "instances (pip install 'edgeml[postgres]'). Or EDGEML_FLEET_DB.",
    )(fn)
    fn = click.option(
        "--store",
        default=lambda: os.environ.get("EDGEML_FLEET_STORE", "artifacts"),
        show_default="artifacts",
        help="Artifact store folder (or EDGEML_FLEET_STORE).",
    )(fn)
    fn = click.option(
        "--key",
        default=None,
        type=click.Path(dir_okay=False),
        help="The fleet's Ed25519 signing key: signs desired states; artifacts must verify against "
        "its public key. Default: your edgeml signing key.",
    )(fn)
    return fn


def open_fleet(db: str, store: str, key: str | None):
    from edgeml.artifact import load_private_key
    from edgeml.fleet import Fleet

    return Fleet(db, store, load_private_key(key or default_key_path()))

"""`edgeml keys create`: an Ed25519 signing key pair."""

from __future__ import annotations

import click

from edgeml.artifact.keys import create_keypair, key_id, load_public_key
from edgeml.cli.output import console, errors_handled, print_json


@click.group("keys")
def keys() -> None:
    """Manage artifact signing keys."""


@keys.command("create")
@click.option(
    "--out",
    "out",
    default="keys",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for signing.key (mode 0600) and signing.pub.",
)
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@errors_handled
def create(out: str, force: bool, as_json: bool) -> None:
    """Create an Ed25519 key pair: keep signing.key secret, give signing.pub to whoever verifies."""
    private, public = create_keypair(out, force=force)
    kid = key_id(load_public_key(public))
    if as_json:
        print_json({"ok": True, "private_key": str(private), "public_key": str(public), "key_id": kid})
        return
    console.print(f"[green]✓[/] signing key  {private}  (mode 0600, keep it secret)")
    console.print(f"[green]✓[/] public key   {public}  (key id {kid}; pass it to `edgeml verify --pubkey`)")

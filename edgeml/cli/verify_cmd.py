"""`edgeml verify`: every check on an artifact, against a pinned public key."""

from __future__ import annotations

import click

from edgeml.artifact.verify import verify
from edgeml.cli.output import console, errors_handled, print_json


@click.command("verify")
@click.argument("artifact", type=click.Path())
@click.option("--pubkey", required=True, type=click.Path(dir_okay=False), help="The signer's public key (.pub).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@errors_handled
def verify_cmd(artifact: str, pubkey: str, as_json: bool) -> None:
    """Check the manifest, its signature, every file's size and sha256, and that nothing was added."""
    result = verify(artifact, pubkey)
    m = result.manifest
    if as_json:
        print_json(
            {
                "ok": True,
                "name": m["name"],
                "version": m["version"],
                "release": m["release"],
                "target": m["target"]["id"],
                "key_id": result.key_id,
                "files": len(m["files"]),
            }
        )
        return
    console.print(
        f"[green]✓ verified[/] {m['name']} {m['version']} (release {m['release']}, target {m['target']['id']}): "
        f"signed by key {result.key_id}, {len(m['files'])} files intact, nothing added"
    )

"""`edgeml fleet tag`: set and remove tags on the devices a selector matches, for rollouts to select by."""

from __future__ import annotations

import click
from rich.markup import escape

from edgeml.cli.fleet_common import fleet_options, open_fleet
from edgeml.cli.output import console, errors_handled, print_json

__all__ = ["tag"]


@click.command("tag")
@fleet_options
@click.argument("selector")
@click.argument("assignments", nargs=-1, metavar="KEY=VALUE...")
@click.option("--remove", "remove", multiple=True, metavar="KEY", help="Remove this tag (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@errors_handled
def tag(db, store, key, selector, assignments, remove, as_json) -> None:
    """Set KEY=VALUE tags (overwriting a key's old value) and remove --remove KEYs on every device SELECTOR
    matches (target=ID, tag:KEY=VALUE, id=PATTERN or all, joined by commas), all in one transaction.

    Then select them: `edgeml fleet rollout create … --to tag:KEY=VALUE`, `edgeml fleet devices --tag KEY=VALUE`.
    A rollout or experiment keeps the devices it chose when it was created.
    """
    from edgeml.fleet.device_tags import TagChange
    from edgeml.fleet.selector import parse_selector

    change = TagChange.parse(assignments, remove)
    result = open_fleet(db, store, key).devices.change_tags(parse_selector(selector), change)
    if as_json:
        print_json(result)
        return
    changed, matched = result["changed"], result["matched"]
    mark = "[green]✓[/]" if changed else "[yellow]•[/]"
    note = "" if changed == matched else f" ({matched - changed} unchanged: already so)"
    console.print(
        f"{mark} tags changed on {changed} of {matched} device(s) matching {escape(selector)}: "
        f"{escape(change.describe())}{note}",
        soft_wrap=True,
    )

"""`edgeml targets`: the registered hardware targets and their options."""

from __future__ import annotations

import click
from rich.table import Table

from edgeml.cli.output import errors_handled, print_json, print_table
from edgeml.targets import TARGETS, load_target
from edgeml.targets.recipe import describe_options


@click.command("targets")
@click.option("--options", "options_of", metavar="TARGET", help="List one target's options instead.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@errors_handled
def targets_cmd(options_of: str | None, as_json: bool) -> None:
    """List targets: runtime, device, precisions, shape rules."""
    if options_of:
        target = load_target(options_of)
        rows = describe_options(target.recipe_type, target.spec.recipe_defaults)
        if as_json:
            print_json(rows)
            return
        table = Table(
            "option", "type", "default", "choices", "description", title=f"{options_of} options (-O key=value)"
        )
        for r in rows:
            table.add_row(r["name"], r["type"], str(r["default"]), " ".join(map(str, r["choices"])), r["help"])
        print_table(table)
        return
    specs = [load_target(t).spec for t in TARGETS]
    if as_json:
        print_json([s.to_dict() for s in specs])
        return
    table = Table("id", "runtime", "device", "precisions", "shapes", "description")
    for s in specs:
        table.add_row(
            s.id,
            s.runtime,
            s.device,
            ", ".join(s.precisions),
            "static" if s.static_shapes else "dynamic ok",
            s.description,
        )
    print_table(table)

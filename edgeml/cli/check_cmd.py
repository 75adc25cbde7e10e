"""`edgeml check`: what a target can run of a model, before compiling."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from edgeml.cli.output import console, errors_handled, print_json, print_table
from edgeml.targets.recipe import parse_option_flags


@click.command("check")
@click.argument("model")
@click.option("--target", "-t", default=None, help="Target id (see `edgeml targets`); default: cpu-ort.")
@click.option("--option", "-O", "option_flags", multiple=True, metavar="KEY=VALUE", help="Target option (repeatable).")
@click.option("--calib", default=None, help="An .npz whose keys are the inputs (TorchScript sources need it).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@errors_handled
def check_cmd(model, target, option_flags, calib, as_json) -> None:
    """Which nodes of MODEL the target runs, which fall back or cannot run, and the rule each breaks."""
    from edgeml.compiler.check_model import check_model

    report = check_model(model, target, options=parse_option_flags(option_flags), calib=calib)
    if as_json:
        print_json(report.to_dict())
        return
    verdict = "[green]can run it[/]" if report.ok else "[red]cannot run it as is[/]"
    console.print(f"{report.target}: {verdict} — {report.supported_nodes}/{report.nodes} nodes supported")
    if report.issues:
        table = Table("node", "op", "rule", "detail", "fix")
        for i in report.issues:
            table.add_row(escape(i.node), escape(i.op), i.rule, escape(i.detail), escape(i.fix))
        print_table(table)
    for note in report.notes:
        console.print(f"[yellow]•[/] {escape(note)}", soft_wrap=True)

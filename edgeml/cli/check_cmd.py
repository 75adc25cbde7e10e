"""`edgeml check`: what a target can run of a model, before compiling."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
from rich.markup import escape
from rich.table import Table

from edgeml.cli.captured_output import captured_output
from edgeml.cli.compile_flags import compile_flags, compile_kwargs
from edgeml.cli.output import console, errors_handled, print_json, print_table, stderr
from edgeml.locations import log_dir


@click.command("check")
@click.argument("model")
@compile_flags("target", "options")
@click.option("--calib", default=None, help="An .npz whose keys are the inputs (TorchScript sources need it).")
@compile_flags("inputs")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Show third-party output (exporter logs) instead of a log file.")
@errors_handled
def check_cmd(model, target, options, calib, inputs, as_json, verbose) -> None:
    """Which nodes of MODEL the target runs, which fall back or cannot run, and the rule each breaks; and what
    was inferred for each input (shape, dtype, batch axis or constant, dynamic axes)."""
    from edgeml.compiler.check_model import check_model

    given = compile_kwargs({"options": options, "inputs": inputs})
    with _third_party_output(verbose):
        report = check_model(model, target, calib=calib, **given)
    if as_json:
        print_json(report.to_dict())
        return
    _print_inputs(report.inputs)
    verdict = "[green]can run it[/]" if report.ok else "[red]cannot run it as is[/]"
    console.print(f"{report.target}: {verdict} — {report.supported_nodes}/{report.nodes} nodes supported")
    if report.issues:
        table = Table("node", "op", "rule", "detail", "fix")
        for i in report.issues:
            table.add_row(escape(i.node), escape(i.op), i.rule, escape(i.detail), escape(i.fix))
        print_table(table)
    for note in report.notes:
        console.print(f"[yellow]•[/] {escape(note)}", soft_wrap=True)


def _print_inputs(inputs) -> None:
    if not inputs:
        return
    table = Table("input", "dtype", "shape", "fed as", "dynamic axes", "decided", title="inputs", title_justify="left")
    for i in inputs:
        fed = (
            f"constant {i['constant'] if i['constant'] is not None else '(a value from the data)'}"
            if i["kind"] == "constant"
            else ("one sample per run" if i["batch_axis"] is None else f"batch axis {i['batch_axis']}")
        )
        if i.get("from_output"):
            fed += f", closed loop ← output {i['from_output']}"
        dynamic = ", ".join(str(a) for a in i["dynamic_axes"]) or "—"
        shape = f"[{', '.join(str(d) for d in i['shape'])}]"
        table.add_row(escape(i["name"]), i["dtype"], escape(shape), escape(fed), dynamic, escape(_decided(i)))
    print_table(table)


def _decided(i) -> str:
    return f"{i['how']}; {i['fed_back']}" if i.get("fed_back") else i["how"]


@contextlib.contextmanager
def _third_party_output(verbose: bool) -> Iterator[None]:
    """Unless verbose: exporter and library output → a log file, named on failure."""
    if verbose:
        yield
        return
    with captured_output(log_dir(None), [console, stderr], name="check") as log:
        try:
            yield
        except BaseException:
            if log.lines():
                stderr.print(f"[dim]third-party output of this check: {log.path}[/]")
            raise

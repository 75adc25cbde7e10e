"""The `edgeml` command: a thin layer that parses, calls the library, and renders the result."""

from __future__ import annotations

import logging

import click

from edgeml import __version__
from edgeml.cli.agent_cli import agent
from edgeml.cli.bench_cmd import bench_cmd
from edgeml.cli.check_cmd import check_cmd
from edgeml.cli.compile_cmd import compile_cmd
from edgeml.cli.demo_cmd import demo_cmd
from edgeml.cli.explain_cmd import explain_cmd
from edgeml.cli.fleet_cmd import fleet
from edgeml.cli.inspect_cmd import inspect_cmd
from edgeml.cli.keys_cmd import keys
from edgeml.cli.run_cmd import run_cmd
from edgeml.cli.targets_cmd import targets_cmd
from edgeml.cli.verify_cmd import verify_cmd

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="edgeml")
@click.option("-v", "--verbose", count=True, help="Log what happens (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Compile trained models for edge targets into signed artifacts, and check and benchmark them."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


for command in (
    keys,
    check_cmd,
    compile_cmd,
    verify_cmd,
    inspect_cmd,
    explain_cmd,
    bench_cmd,
    run_cmd,
    targets_cmd,
    fleet,
    agent,
    demo_cmd,
):
    main.add_command(command)

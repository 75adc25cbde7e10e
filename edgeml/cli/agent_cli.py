"""`edgeml agent init | run | status`: the device agent's own commands (`edgeml-agent`) mounted under the main
CLI, for machines that have the whole edgeml installed. Devices use `edgeml-agent`, which loads no compiler code."""

from __future__ import annotations

import click

from edgeml.device_agent.cli import main as agent_main

__all__ = ["agent"]

agent = click.Group(
    "agent",
    commands=dict(agent_main.commands),
    help="The device agent: write its config, run it, show its status (same as `edgeml-agent`).",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)

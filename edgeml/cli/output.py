"""How every command talks to a person (rich, on stderr for progress) or a script (--json, on stdout)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console

from edgeml.cli_errors import errors_handled

__all__ = ["console", "errors_handled", "human_size", "print_json", "stderr"]

console = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def human_size(n: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)

"""How every command talks to a person (rich, on stderr for progress) or a script (--json, on stdout)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from edgeml.errors import EdgemlError, VerificationError

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


def errors_handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an EdgemlError into its message + hint (or a JSON object with --json) and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgemlError as exc:
            if kwargs.get("as_json"):
                body = {"ok": False, "error": exc.message, "hint": exc.hint, "kind": type(exc).__name__}
                if isinstance(exc, VerificationError):
                    body["code"] = exc.code
                print_json(body)
            else:
                stderr.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
                if exc.hint:
                    stderr.print(f"[yellow]hint:[/] {escape(exc.hint)}", soft_wrap=True)
            sys.exit(exc.exit_code)

    return wrapper

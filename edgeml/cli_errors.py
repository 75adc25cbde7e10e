"""An `EdgemlError` raised by a command → its message and hint on stderr (or one JSON object on stdout with
`--json`) and its exit code. Shared by `edgeml` and `edgeml-agent`; it lives in the light core so the agent's
CLI needs nothing of `edgeml.cli` (which imports the compiler's commands)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from edgeml.errors import EdgemlError, VerificationError

__all__ = ["errors_handled"]


def errors_handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an EdgemlError into its message + hint (or a JSON object with --json) and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgemlError as exc:
            if kwargs.get("as_json"):
                click.echo(json.dumps(_error_body(exc), indent=2, sort_keys=True, default=str))
            else:
                _print_error(exc)
            sys.exit(exc.exit_code)

    return wrapper


def _error_body(exc: EdgemlError) -> dict[str, Any]:
    body = {"ok": False, "error": exc.message, "hint": exc.hint, "kind": type(exc).__name__}
    if isinstance(exc, VerificationError):
        body["code"] = exc.code
    return body


def _print_error(exc: EdgemlError) -> None:
    from rich.console import Console  # NOTE: only on the error path; the agent's CLI starts without rich
    from rich.markup import escape

    stderr = Console(stderr=True, highlight=False)
    stderr.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
    if exc.hint:
        stderr.print(f"[yellow]hint:[/] {escape(exc.hint)}", soft_wrap=True)

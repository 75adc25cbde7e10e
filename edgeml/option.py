"""`option()`: a typed config field with its one-line description, the one helper every options dataclass uses
(pass and lowering configs, target recipes, the device agent's configuration). The field's metadata is what
CLI help, recipe validation and docs read: `help`, and where given `choices`, a value `check`, `required`, `path`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any

__all__ = ["option"]


def option(
    default: Any,
    help: str,
    choices: tuple = (),
    *,
    check: Callable[[Any], str | None] | None = None,
    required: bool = False,
    path: bool = False,
) -> Any:
    """A dataclass field: its default (a list becomes a tuple, made per instance), a one-line description, the
    values it accepts (if limited), a check returning what is wrong with a value (or None), whether it must be
    given, and whether it is a path (resolved against the config file's folder)."""
    meta = {"help": help, "choices": choices, "check": check, "required": required, "path": path}
    if isinstance(default, list):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)

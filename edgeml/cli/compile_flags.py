"""The options schema (edgeml/compiler/compile_options.py) → click flags, and the flags given → the keywords
`compile_model` takes: `edgeml compile` and `edgeml check` declare their shared flags here, not by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from edgeml.calibration.input_layout import parse_input_flags
from edgeml.compiler.compile_options import CompileOption, option_named
from edgeml.targets.recipe import parse_option_flags

__all__ = ["compile_flags", "compile_kwargs"]

# what a repeatable flag's strings become (parsed in the command, where errors_handled reports a bad one)
_PARSE: dict[str, Callable[[tuple[str, ...]], Any]] = {
    "options": parse_option_flags,
    "inputs": lambda flags: parse_input_flags(flags) or None,
}
_FILES = {"key": click.Path(dir_okay=False), "recipe_file": click.Path(exists=True, dir_okay=False)}


def compile_flags(*names: str) -> Callable[[Callable], Callable]:
    """Decorate a command with the flags of these options, in this order."""

    def decorate(command: Callable) -> Callable:
        for name in reversed(names):
            command = _flag(option_named(name))(command)
        return command

    return decorate


def compile_kwargs(flags: dict[str, Any]) -> dict[str, Any]:
    """The flags a command received → compile_model's keywords (repeatable flags parsed)."""
    return {name: _PARSE[name](value) if name in _PARSE else value for name, value in flags.items()}


def _flag(option: CompileOption) -> Callable[[Callable], Callable]:
    decls = [option.cli_flag, *([option.short] if option.short else []), option.name]
    if option.type is bool:
        return click.option(*decls, is_flag=True, help=option.help_text())
    if option.multiple:
        return click.option(*decls, multiple=True, metavar=option.metavar, help=option.help_text())
    kind = _FILES.get(option.name) if option.type is Path else option.type
    return click.option(*decls, type=kind, default=None, metavar=option.metavar, help=option.help_text())

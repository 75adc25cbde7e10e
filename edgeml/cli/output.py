"""How every command talks to a person (rich, on stderr for progress) or a script (--json, on stdout).

Prose is soft-wrapped (the terminal wraps it; a file gets whole lines). A table is drawn only where it fits
the width without wrapping a cell; on a narrow terminal, or in a pipe or file (80 columns unless COLUMNS
says otherwise), it becomes one record per block: the row's first cell, then `header: value` fields.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from edgeml.cli_errors import errors_handled

__all__ = ["console", "errors_handled", "human_size", "print_json", "print_table", "stderr", "table_blocks"]

console = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
_UNLIMITED = 100_000


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str), file=console.file)


def print_table(table: Table, to: Console | None = None) -> None:
    """`table` as drawn where its natural width fits; otherwise one record per block (see the module doc)."""
    to = to or console
    natural = Measurement.get(to, to.options.update_width(_UNLIMITED), table).maximum
    if natural <= to.width:
        to.print(table, soft_wrap=False)
        return
    for line in table_blocks(table, to.width):
        to.print(line, soft_wrap=True)


def table_blocks(table: Table, width: int) -> list[str]:
    """A table's rows as markup lines: the title, then per row its first cell (in the row's style) and its
    other cells as `header: value` fields packed into lines of at most `width` columns."""
    headers = [_markup(c.header) for c in table.columns]
    columns = [[_markup(cell) for cell in c.cells] for c in table.columns]
    lines = [f"[bold]{_markup(table.title)}[/]"] if table.title else []
    for i, row in enumerate(table.rows):
        cells = [col[i] for col in columns]
        if not table.show_header:  # a grid of key/value rows: one line each
            lines.append("  ".join(c for c in cells if c))
            continue
        style = str(row.style or "") or "bold"
        fields = [f"[dim]{h}:[/] {c}" if h else c for h, c in zip(headers[1:], cells[1:], strict=True) if c]
        heading = f"#{cells[0]}" if headers[0] == "#" else cells[0]  # NOTE: a bare rank reads as a stray number
        lines += [f"[{style}]{heading}[/]" if heading else "", *_packed(fields, width - 2)]
    if table.caption:
        lines.append(f"[dim]{_markup(table.caption)}[/]")
    return [line for line in lines if line]


def _packed(fields: list[str], width: int) -> list[str]:
    lines: list[str] = []
    for field in fields:
        if lines and Text.from_markup(lines[-1]).cell_len + 3 + Text.from_markup(field).cell_len <= width:
            lines[-1] += " · " + field
        else:
            lines.append(field)
    return ["  " + line for line in lines]


def _markup(value: Any) -> str:
    if value is None:
        return ""
    return value.markup if isinstance(value, Text) else str(value)


def human_size(n: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)

"""The compiler's progress events → a live rich display on stderr (a spinner per step, a line when done)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["RichProgress"]


class RichProgress:
    def __init__(self, console: Console, show_other_output: bool = True) -> None:
        """`show_other_output`: print what other code writes to sys.stdout/stderr above the live display
        (False where that output is being captured to a log: rich would otherwise route it to the screen)."""
        self._console = console
        self._bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True,
            redirect_stdout=show_other_output, redirect_stderr=show_other_output,
        )  # fmt: skip
        self._tasks: dict[str, int] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def step(self, label: str) -> None:
        self._tasks[label] = self._bar.add_task(escape(label), total=None)
        self._started[label] = time.perf_counter()

    def finished(self, label: str, detail: str) -> None:
        task = self._tasks.pop(label, None)
        if task is not None:
            self._bar.remove_task(task)
        style = "dim" if detail == "cached" else "green"
        self._console.print(f"  [{style}]✓[/] {escape(label)} [dim]({escape(detail)})[/]")

    def note(self, message: str) -> None:
        self._console.print(f"  [yellow]•[/] {escape(message)}", soft_wrap=True)

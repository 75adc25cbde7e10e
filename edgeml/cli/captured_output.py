"""Third-party output during a command (warnings, logging, C-level prints of LiteRT, XNNPACK, TorchScript)
→ a log file, so the user reads edgeml's progress and results; `edgeml compile -v` shows it all instead.

C libraries write to file descriptors 1 and 2 directly, so those are pointed at the log for the duration;
edgeml's own consoles are pointed at duplicates of the original descriptors first, so progress, tables and
--json output still reach the terminal (or the pipe) they were going to.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rich.console import Console

__all__ = ["CapturedOutput", "captured_output"]

_KEEP = 20  # logs kept in the folder: the newest ones


@dataclass
class CapturedOutput:
    path: Path

    def lines(self) -> int:
        try:
            with open(self.path, "rb") as f:
                return sum(1 for _ in f)
        except OSError:
            return 0


@contextlib.contextmanager
def captured_output(folder: Path, consoles: list[Console], name: str = "compile") -> Iterator[CapturedOutput]:
    """Send everything written to stdout/stderr (Python and C) to a new log in `folder`, except what goes
    through `consoles`. An empty log is removed afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    _prune(folder, name)
    log = CapturedOutput(folder / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    _flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    redirected = [(c, getattr(c, "_file", None), getattr(c, "_width", None), _reopened(c, saved)) for c in consoles]
    try:
        with open(log.path, "ab") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield log
            finally:
                _flush()
                for fd, copy in saved.items():
                    os.dup2(copy, fd)
    finally:
        for fd in saved.values():
            os.close(fd)
        for console, file, width, reopened in redirected:
            console.file, console._width = file, width  # NOTE: rich has no public "unset width"
            if reopened is not None:
                reopened.close()
        if log.lines() == 0:
            log.path.unlink(missing_ok=True)


def _reopened(console: Console, saved: dict[int, int]) -> IO[str] | None:
    """Point `console` at a duplicate of its original descriptor (and pin its width, which rich would
    otherwise read from descriptors now pointing at the log). None where it writes elsewhere."""
    stream, width = console.file, console.width
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    if fd not in saved:
        return None
    reopened = os.fdopen(os.dup(saved[fd]), "w", encoding=getattr(stream, "encoding", None) or "utf-8", buffering=1)
    console.file, console.width = reopened, width
    return reopened


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)  # C stdio buffers, which would otherwise empty after the restore


def _prune(folder: Path, name: str) -> None:
    logs = sorted(folder.glob(f"{name}-*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[: max(0, len(logs) - _KEEP + 1)]:
        old.unlink(missing_ok=True)

"""A small JSON document ↔ a file replaced atomically (temp file, fsync, rename, fsync the folder), so a
power cut leaves the old document or the new one, never a torn one. The agent keeps its guard state,
accepted update, counters and last-telemetry summary this way."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from edgeml.device_agent.state_store import fsync_dir

__all__ = ["read_json", "write_json"]


def read_json(path: Path) -> Any:
    """The document at `path`, None if there is none; ValueError if it is not JSON, OSError if unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return json.loads(data)


def write_json(path: Path, value: Any, durable: bool = True) -> None:
    """Replace `path` with `value` as JSON; `durable` also fsyncs (skip it for summaries losing which is fine)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(value, f, sort_keys=True, separators=(",", ":"))
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise

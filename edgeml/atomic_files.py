"""Bytes or a JSON document → a file replaced atomically: written to a hidden temp file beside it, fsynced,
`os.replace`d over the old one, and the folder fsynced, so a power cut leaves the old content or the new,
never a torn file. The one routine every part of edgeml uses to write a file in place.

    write_bytes_atomic(path, data)              state files, keys (mode=0o600), download checkpoints
    write_json_atomic(path, value)              small JSON documents (compact, sorted keys)
    with atomic_write(path) as f: ...           streamed content (a .tar being packed)
    fsync_dir(folder)                           make a rename or unlink inside `folder` durable

`durable=False` skips both fsyncs (a cache or a summary that may be lost, never torn). Temp files are named
`.<name>.<random>.tmp`, so a sweep after a crash can find them with `stale_temp_files(path)`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "fsync_dir", "read_json", "stale_temp_files", "write_bytes_atomic", "write_json_atomic"]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or unlink inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, mode: int = 0o644, durable: bool = True) -> Iterator[IO[bytes]]:
    """A binary file to write `path`'s new content into; it replaces `path` only if the block ends normally."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data`; OSError (the old file intact) when the disk refuses."""
    with atomic_write(path, mode=mode, durable=durable) as f:
        f.write(data)


def write_json_atomic(path: str | os.PathLike[str], value: Any, *, durable: bool = True) -> None:
    """Replace `path` with `value` as compact JSON with sorted keys."""
    write_bytes_atomic(path, json.dumps(value, sort_keys=True, separators=(",", ":")).encode(), durable=durable)


def read_json(path: str | os.PathLike[str]) -> Any:
    """The document at `path`, None if there is none; ValueError if it is not JSON, OSError if unreadable."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    return json.loads(data)


def stale_temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """Temp files an interrupted write of `path` left behind (the file itself is always whole)."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []

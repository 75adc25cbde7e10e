"""Chunks of one artifact, in any order, duplicated or interleaved with other artifacts' → the verified
file at `dest`, renamed into place atomically; resumable after a restart with bounded memory.

On disk beside `dest`: `<dest>.partial`, preallocated to the artifact size, each chunk written at its
offset; and a checkpoint, the bitmap of the chunks received — by default `<dest>.partial.state` (with the
layout), or wherever the caller's `Checkpoints` keep it (the device agent keeps it in its one state file).
The bitmap is saved only after the data it covers is fsynced (every `checkpoint_every` chunks or
`checkpoint_s` seconds, whichever comes first, and on `checkpoint()`), so after a power cut a resumed
Assembler may ask again for a few chunks but never trusts one that is not on disk.
When the last chunk lands, the whole file's size and sha256 are checked before the rename; a mismatch
discards the download. Nothing is ever renamed to `dest` unverified.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

from edgeml.atomic_files import fsync_dir, write_bytes_atomic
from edgeml.errors import ArtifactError
from edgeml.protocol.chunk_request import ChunkRequest
from edgeml.protocol.chunks import Chunk, ChunkLayout, decode_chunk
from edgeml.protocol.protocol_error import ProtocolError

__all__ = ["AddResult", "Assembler", "Checkpoints", "FileCheckpoints"]

AddResult = Literal["stored", "duplicate", "ignored", "complete"]
_STATE_SCHEMA = "edgeml/v1/assembly"
_READ_BLOCK = 1 << 20


class Checkpoints(Protocol):
    """Where an Assembler keeps the bitmap of the chunks safely on disk (OSError when it cannot)."""

    def load(self) -> bytes | None: ...

    def save(self, bitmap: bytes) -> None: ...

    def clear(self) -> None: ...


class FileCheckpoints:
    """The bitmap in `path` (JSON with the layout, replaced atomically); a file for another layout reads as none."""

    def __init__(self, path: Path, layout: ChunkLayout) -> None:
        self.path = path
        self._layout = [layout.sha256, layout.size, layout.chunk_size]

    def load(self) -> bytes | None:
        saved = _read_state(self.path)
        if saved is None or saved.get("layout") != self._layout:
            return None
        try:
            return base64.b64decode(saved.get("received", ""), validate=True)
        except (ValueError, TypeError):
            return None

    def save(self, bitmap: bytes) -> None:
        body = {"schema": _STATE_SCHEMA, "layout": self._layout, "received": base64.b64encode(bitmap).decode()}
        write_bytes_atomic(self.path, json.dumps(body).encode())

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class Assembler:
    """Streams the chunks of artifact `layout` into `dest`."""

    def __init__(
        self,
        dest: str | os.PathLike[str],
        layout: ChunkLayout,
        checkpoint_every: int = 64,
        checkpoints: Checkpoints | None = None,
        checkpoint_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dest = Path(dest)
        self.layout = layout
        self.partial = self.dest.with_name(self.dest.name + ".partial")
        self.state_path = self.dest.with_name(self.dest.name + ".partial.state")  # the default checkpoint file
        self.checkpoints = checkpoints or FileCheckpoints(self.state_path, layout)
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_s, self.clock = checkpoint_s, clock  # NOTE: a slow download still saves progress often
        self._saved_at = clock()
        self._bits = bytearray((layout.count + 7) // 8)
        self._received = 0
        self._unsaved = 0
        self.complete = self._already_in_place() or self._resume()

    @property
    def received(self) -> int:
        return self._received

    def add(self, chunk: Chunk | bytes) -> AddResult:
        """Store one chunk (a decoded Chunk or the raw message); ProtocolError for a damaged message or
        one that contradicts this artifact's layout; ArtifactError when the disk fails."""
        if not isinstance(chunk, Chunk):
            chunk = decode_chunk(chunk)
        if chunk.layout.sha256 != self.layout.sha256:
            return "ignored"
        if chunk.layout != self.layout:
            raise ProtocolError("bad_layout", f"chunk layout {chunk.layout} contradicts the expected {self.layout}")
        if self.complete or self._has(chunk.index):
            return "duplicate"
        self._write(chunk)
        if self._received == self.layout.count:
            self._finish()
            return "complete"
        if self._unsaved >= self.checkpoint_every or self.clock() - self._saved_at >= self.checkpoint_s:
            self.checkpoint()
        return "stored"

    def missing(self) -> list[int]:
        return [i for i in range(self.layout.count) if not self._has(i)]

    def chunk_request(self) -> ChunkRequest:
        """The request to publish for what is still missing (the first ranges, if there are many)."""
        return ChunkRequest.for_indices(self.layout.sha256, self.layout.chunk_size, self.missing())

    def checkpoint(self) -> None:
        """Make every chunk stored so far survive a power cut: fsync the data, then save the bitmap."""
        if self.complete or not self.partial.exists():
            return
        with self._disk("save download progress"):
            fd = os.open(self.partial, os.O_RDWR)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self.checkpoints.save(bytes(self._bits))
        self._unsaved = 0
        self._saved_at = self.clock()

    def discard(self) -> None:
        """Remove the partial download and its checkpoint (the next `add` starts from scratch)."""
        self.partial.unlink(missing_ok=True)
        self.checkpoints.clear()
        self._bits = bytearray(len(self._bits))
        self._received = self._unsaved = 0
        self.complete = False

    def _has(self, index: int) -> bool:
        return bool(self._bits[index >> 3] & (1 << (index & 7)))

    def _write(self, chunk: Chunk) -> None:
        if not self.partial.exists():
            self._preallocate()
        offset, _ = self.layout.span(chunk.index)
        with self._disk("write a chunk"):
            fd = os.open(self.partial, os.O_WRONLY)
            try:
                if os.pwrite(fd, chunk.payload, offset) != len(chunk.payload):
                    raise OSError(errno.ENOSPC, "short write")
            finally:
                os.close(fd)
        self._bits[chunk.index >> 3] |= 1 << (chunk.index & 7)
        self._received += 1
        self._unsaved += 1

    def _preallocate(self) -> None:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._disk("reserve space for the download"):
                fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    _allocate(fd, self.layout.size)
                finally:
                    os.close(fd)
                self.checkpoints.save(bytes(self._bits))
        except ArtifactError:
            self.discard()
            raise

    def _finish(self) -> None:
        size, digest = _file_digest(self.partial)
        if (size, digest) != (self.layout.size, self.layout.sha256):
            self.discard()
            raise ProtocolError(
                "hash_mismatch",
                f"assembled artifact is {size} bytes with sha256 {digest[:12]}…, expected {self.layout.size} bytes "
                f"with {self.layout.sha256[:12]}…; the download was discarded and starts again",
                "if this repeats, the fleet is serving a file that does not match its desired state",
            )
        try:
            with self._disk("move the verified artifact into place"):
                _fsync_file(self.partial)
                os.replace(self.partial, self.dest)
                fsync_dir(self.dest.parent)
        except ArtifactError:
            with contextlib.suppress(ArtifactError):
                self.checkpoint()  # so a new Assembler finds every chunk and only retries the rename
            raise
        self.checkpoints.clear()
        self.complete = True

    def _already_in_place(self) -> bool:
        if not self.dest.is_file() or self.dest.stat().st_size != self.layout.size:
            return False
        if _file_digest(self.dest)[1] != self.layout.sha256:
            return False
        self.partial.unlink(missing_ok=True)
        self.checkpoints.clear()
        self._bits = bytearray(b"\xff" * len(self._bits))
        self._received = self.layout.count
        return True

    def _resume(self) -> bool:
        bits = self._saved_bits()
        if bits is None:
            self.discard()
            return False
        self._bits = bits
        self._received = sum(self._has(i) for i in range(self.layout.count))
        if self._received < self.layout.count:
            return False
        try:  # every chunk was saved but the rename never happened (a crash or a full disk at the end)
            self._finish()
        except ProtocolError:
            return False
        return True

    def _saved_bits(self) -> bytearray | None:
        bits = self.checkpoints.load()
        if bits is None or len(bits) != len(self._bits):
            return None
        if not self.partial.is_file() or self.partial.stat().st_size != self.layout.size:
            return None
        return bytearray(bits)

    def _disk(self, doing: str) -> contextlib.AbstractContextManager[None]:
        return _disk_errors(doing, self.dest)


@contextlib.contextmanager
def _disk_errors(doing: str, dest: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ArtifactError(
                f"the disk is full: cannot {doing} for {dest.name}; {dest} was not touched",
                "free space on the device (or point the agent's data folder at a larger disk); the download "
                "resumes from its last checkpoint",
            ) from exc
        raise ArtifactError(
            f"cannot {doing} for {dest}: {exc.strerror or exc}", "check the folder's permissions"
        ) from exc


def _allocate(fd: int, size: int) -> None:
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)  # reserves the blocks now: a full disk fails here, not mid-download
    else:
        os.ftruncate(fd, size)


def _file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(_READ_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        saved = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) and saved.get("schema") == _STATE_SCHEMA else None

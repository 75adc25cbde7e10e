"""Tar bytes, fed in order as they stream by → the bytes of one named member, and nothing else kept.

A simulated device hashes an artifact's chunks and drops them; this tap reads the tar headers on the way
(ustar, PAX `path`/`size` records, GNU long names) so it can keep `manifest.json` — wherever it sits in the
archive — while every other member is skipped by count. It holds at most one 512-byte header, one PAX
record block and the wanted member, each bounded by `limit`; a larger member or a malformed header ends the
tap with a reason instead of growing. The caller trusts `data` only after the whole archive verified.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable

__all__ = ["TarMemberTap"]

BLOCK = 512


class TarMemberTap:
    def __init__(self, name: str, limit: int = 1 << 20) -> None:
        self.name, self.names = name, {name, f"./{name}"}
        self.limit = limit
        self.data: bytes | None = None  # the member's bytes, once they all went by
        self.problem: str | None = None  # why the tap gave up (no such member, too large, malformed)
        self._buf = bytearray()
        self._want = BLOCK
        self._then: Callable[[bytes], None] = self._on_header
        self._skip = 0
        self._meta: dict[str, str] = {}  # PAX / GNU long-name overrides for the next header

    @property
    def done(self) -> bool:
        return self.data is not None or self.problem is not None

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self.done:
            if self._skip:
                n = min(self._skip, len(view))
                self._skip, view = self._skip - n, view[n:]
                continue
            take = min(self._want - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) == self._want:
                block, self._buf = bytes(self._buf), bytearray()
                self._then(block)

    def _collect(self, size: int, then: Callable[[bytes], None]) -> None:
        """Gather the next `size` bytes, skip their padding to the next block, and hand them to `then`."""
        if size == 0:
            then(b"")
            return

        def gathered(data: bytes) -> None:
            self._want, self._then, self._skip = BLOCK, self._on_header, -size % BLOCK
            then(data)

        self._want, self._then = size, gathered

    def _on_header(self, block: bytes) -> None:
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            size = int(self._meta.get("size", info.size))
            if size < 0:
                raise ValueError(f"negative size {size}")
        except tarfile.EOFHeaderError:
            self.problem = f"no {self.name} in the archive"
            return
        except (tarfile.HeaderError, ValueError) as exc:
            self.problem = f"malformed tar header: {exc}"
            return
        name = self._meta.get("path", info.name)
        if info.type in (tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME):
            self._read_meta(info.type, size)
            return
        self._meta = {}  # NOTE: PAX and long-name records apply to the one header that follows them
        if not (info.isreg() and name in self.names):
            self._skip = size + -size % BLOCK
        elif size > self.limit:
            self.problem = f"{name} is {size} bytes, more than the {self.limit} this tap keeps"
        else:
            self._collect(size, self._keep)

    def _read_meta(self, kind: bytes, size: int) -> None:
        if size > self.limit:
            self.problem = f"a tar metadata record of {size} bytes, more than the {self.limit} this tap keeps"
            return
        parse = _pax_records if kind == tarfile.XHDTYPE else _long_name
        self._collect(size, lambda data: self._meta.update(parse(data)))

    def _keep(self, data: bytes) -> None:
        self.data = data


def _pax_records(data: bytes) -> dict[str, str]:
    """`LEN key=value\\n` records (POSIX.1-2001); only `path` and `size` matter here."""
    out: dict[str, str] = {}
    while data:
        length, sep, _ = data.partition(b" ")
        if not sep or not length.isdigit() or int(length) <= len(length) + 1:
            break
        n = int(length)
        record, data = data[len(length) + 1 : n - 1], data[n:]  # NOTE: without "LEN " and the newline
        key, _, value = record.partition(b"=")
        if key in (b"path", b"size"):
            out[key.decode()] = value.decode("utf-8", "surrogateescape")
    return out


def _long_name(data: bytes) -> dict[str, str]:
    return {"path": data.rstrip(b"\0").decode("utf-8", "surrogateescape")}

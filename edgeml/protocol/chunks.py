"""Artifact bytes or file → fixed-size chunk messages (a 96-byte binary header + payload), and back.

Header, big-endian (struct ">4sBBH32sIIIQI32s"):

    magic      4s   b"EMLC"
    version    B    1
    flags      B    0 (reserved)
    header_len H    96
    artifact   32s  sha256 of the whole artifact (raw bytes)
    index      I    this chunk, 0-based
    count      I    chunks in the artifact = ceil(size / chunk_size)
    chunk_size I    nominal chunk size; chunk i starts at i × chunk_size
    size       Q    artifact size in bytes
    length     I    this chunk's payload length (chunk_size, less for the last chunk)
    digest     32s  sha256 of this payload

The per-chunk digest catches a damaged chunk early; it is not a signature. Trust comes from the whole
file's sha256, which the signed desired state carries and the Assembler checks before anything is used.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edgeml.protocol.fields import SHA256_PATTERN
from edgeml.protocol.protocol_error import ProtocolError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "HEADER_SIZE",
    "MAX_CHUNK_COUNT",
    "MAX_CHUNK_SIZE",
    "MIN_CHUNK_SIZE",
    "Chunk",
    "ChunkLayout",
    "check_chunk_size",
    "decode_chunk",
    "encode_chunk",
    "iter_chunks",
    "publish_size",
]

MAGIC = b"EMLC"
CHUNK_VERSION = 1
_HEADER = struct.Struct(">4sBBH32sIIIQI32s")
HEADER_SIZE = _HEADER.size  # 96
DEFAULT_CHUNK_SIZE = 64 * 1024
MIN_CHUNK_SIZE = 512
MAX_CHUNK_SIZE = 512 * 1024  # EMQX's default 1 MB packet limit still fits, with room to spare
MAX_CHUNK_COUNT = 1 << 20
# MQTT PUBLISH overhead on top of the chunk message: fixed header (≤ 5), topic (2 + 91), packet id (2),
# MQTT 5 properties (≤ 64 budgeted).
_MQTT_OVERHEAD = 5 + 2 + len("edgeml/v1/artifacts/") + 64 + len("/chunks") + 2 + 64
_READ_BLOCK = 1 << 20


def publish_size(chunk_size: int) -> int:
    """An upper bound, in bytes, of the MQTT PUBLISH packet that carries one chunk of `chunk_size`."""
    return _MQTT_OVERHEAD + HEADER_SIZE + chunk_size


def check_chunk_size(chunk_size: int, max_packet: int | None = None) -> int:
    """Return `chunk_size` if it is in range and (given the broker's `max_packet`) fits one packet."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise ProtocolError("bad_layout", f"chunk size {chunk_size!r} is not an integer")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ProtocolError(
            "bad_layout",
            f"chunk size {chunk_size} is outside [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]",
            f"use the default {DEFAULT_CHUNK_SIZE} (64 KiB)",
        )
    if max_packet is not None and publish_size(chunk_size) > max_packet:
        raise ProtocolError(
            "bad_layout",
            f"a {chunk_size}-byte chunk makes a {publish_size(chunk_size)}-byte MQTT packet, over the broker's "
            f"maximum of {max_packet}",
            f"use a chunk size of at most {max_packet - publish_size(0)} bytes",
        )
    return chunk_size


@dataclass(frozen=True)
class ChunkLayout:
    """How one artifact is cut: its sha256 and size, and the chunk size; chunk i covers
    [i × chunk_size, min(size, (i + 1) × chunk_size))."""

    sha256: str
    size: int
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        if not isinstance(self.sha256, str) or not SHA256_PATTERN.fullmatch(self.sha256):
            raise ProtocolError("bad_layout", f"artifact digest {self.sha256!r} is not 64 lowercase hex digits")
        check_chunk_size(self.chunk_size)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ProtocolError("bad_layout", f"artifact size {self.size!r} is not a positive integer")
        if self.count > MAX_CHUNK_COUNT:
            raise ProtocolError(
                "bad_layout",
                f"a {self.size}-byte artifact in {self.chunk_size}-byte chunks makes {self.count} chunks, "
                f"more than {MAX_CHUNK_COUNT}",
                "use a larger chunk size",
            )

    @property
    def count(self) -> int:
        return -(-self.size // self.chunk_size)

    def span(self, index: int) -> tuple[int, int]:
        """(offset, length) of chunk `index` in the artifact."""
        if not 0 <= index < self.count:
            raise ProtocolError("bad_index", f"chunk index {index} is outside [0, {self.count})")
        offset = index * self.chunk_size
        return offset, min(self.chunk_size, self.size - offset)

    @classmethod
    def of(cls, source: bytes | str | os.PathLike[str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> ChunkLayout:
        """The layout of artifact bytes or an artifact file (hashed in 1 MiB blocks)."""
        if isinstance(source, bytes):
            return cls(hashlib.sha256(source).hexdigest(), len(source), chunk_size)
        digest, size = hashlib.sha256(), 0
        with open(source, "rb") as f:
            while block := f.read(_READ_BLOCK):
                digest.update(block)
                size += len(block)
        return cls(digest.hexdigest(), size, chunk_size)


@dataclass(frozen=True)
class Chunk:
    """One decoded, checksum-verified chunk."""

    layout: ChunkLayout
    index: int
    payload: bytes


def encode_chunk(layout: ChunkLayout, index: int, payload: bytes) -> bytes:
    """Header + payload for chunk `index` of `layout`."""
    _, length = layout.span(index)
    if len(payload) != length:
        raise ProtocolError("length_mismatch", f"chunk {index} must be {length} bytes, got {len(payload)}")
    head = _HEADER.pack(
        MAGIC, CHUNK_VERSION, 0, HEADER_SIZE, bytes.fromhex(layout.sha256), index, layout.count,
        layout.chunk_size, layout.size, length, hashlib.sha256(payload).digest(),
    )  # fmt: skip
    return head + payload


def decode_chunk(data: bytes) -> Chunk:
    """A chunk message → Chunk; ProtocolError for a short, foreign, inconsistent or damaged one."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < HEADER_SIZE:
        raise ProtocolError("truncated", f"a chunk message is at least {HEADER_SIZE} bytes; got {_len(data)}")
    magic, version, _flags, header_len, artifact, index, count, chunk_size, size, length, digest = _HEADER.unpack_from(
        data
    )
    if magic != MAGIC:
        raise ProtocolError("bad_magic", f"chunk message starts with {magic!r}, not {MAGIC!r}")
    if version != CHUNK_VERSION or header_len != HEADER_SIZE:
        raise ProtocolError(
            "unsupported_version",
            f"chunk header version {version} (length {header_len}); this edgeml reads version {CHUNK_VERSION}",
            "upgrade the agent so it reads the fleet's chunk format",
        )
    layout = ChunkLayout(artifact.hex(), size, chunk_size)
    if count != layout.count:
        raise ProtocolError("bad_layout", f"chunk header says {count} chunks; size and chunk size make {layout.count}")
    payload = bytes(data[HEADER_SIZE:])
    _check_payload(layout, index, length, payload, digest)
    return Chunk(layout, index, payload)


def _check_payload(layout: ChunkLayout, index: int, length: int, payload: bytes, digest: bytes) -> None:
    _, expected = layout.span(index)
    if length != expected or len(payload) != length:
        raise ProtocolError(
            "length_mismatch",
            f"chunk {index}: header length {length}, payload {len(payload)} bytes, layout needs {expected}",
        )
    if hashlib.sha256(payload).digest() != digest:
        raise ProtocolError("bad_checksum", f"chunk {index} of {layout.sha256[:12]}… does not match its sha256")


def iter_chunks(
    source: bytes | str | os.PathLike[str], layout: ChunkLayout, indices: Iterable[int] | None = None
) -> Iterator[bytes]:
    """Encoded chunk messages of `source` (all, or just `indices`), reading a file one chunk at a time."""
    wanted = range(layout.count) if indices is None else indices
    if isinstance(source, bytes):
        for i in wanted:
            offset, length = layout.span(i)
            yield encode_chunk(layout, i, source[offset : offset + length])
        return
    with open(Path(source), "rb") as f:
        for i in wanted:
            offset, length = layout.span(i)
            yield encode_chunk(layout, i, os.pread(f.fileno(), length, offset))


def _len(data: object) -> str:
    return str(len(data)) if isinstance(data, (bytes, bytearray, memoryview)) else type(data).__name__

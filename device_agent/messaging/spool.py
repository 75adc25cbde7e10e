"""Messages the agent could not send (offline) → append-only segment files under a byte cap, replayed in
order on reconnect; past the cap the oldest segments are dropped first.

Layout: `<folder>/<index:012d>.seg`, each a run of records

    magic "ES" | crc32 of (topic + payload) | topic length (2 B) | payload length (4 B) | topic | payload

appended and fsynced one at a time. A record torn by a power cut fails its CRC and ends its segment's
replay (the rest of that segment is dropped: it was never acknowledged to anyone). Segments are about
max_bytes / 8 each, so the cap drops old data in eighths, not all at once.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Spool", "SpoolRecord"]

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">2sIHI")
_MAGIC = b"ES"
_SUFFIX = ".seg"


@dataclass(frozen=True)
class SpoolRecord:
    topic: str
    payload: bytes


@dataclass
class _Segment:
    index: int
    bytes: int = 0
    records: int = 0
    sealed: bool = False  # found on disk at start: never appended to (its tail may be torn)


class Spool:
    """A bounded, durable FIFO of (topic, payload) records; thread-safe."""

    def __init__(self, folder: Path, max_bytes: int, durable: bool = True) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.segment_bytes = max(1, max_bytes // 8)
        self.durable = durable
        self.dropped = 0  # records dropped to stay under the cap, since this object was made
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        self._segments = [self._scan(path) for path in sorted(folder.glob(f"*{_SUFFIX}"))]
        self._next_index = (self._segments[-1].index + 1) if self._segments else 0

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(s.bytes for s in self._segments)

    def __len__(self) -> int:
        with self._lock:
            return sum(s.records for s in self._segments)

    def append(self, topic: str, payload: bytes) -> None:
        """Add one record at the end; drop the oldest records if the spool would pass its cap."""
        record = _encode(topic, payload)
        if len(record) > self.max_bytes:
            log.warning("a %d-byte message for %s is larger than the whole spool (%d bytes); dropped",
                        len(record), topic, self.max_bytes)  # fmt: skip
            self.dropped += 1
            return
        with self._lock:
            segment = self._segment_for(len(record))
            self._write(segment, record)
            self._enforce_cap()

    def replay(self, send: Callable[[str, bytes], None]) -> int:
        """Hand every record to `send`, oldest first; a segment is deleted once all of it was handed over.
        Stops at the first exception from `send`: that segment stays (its records may go out twice, which
        receivers de-duplicate by `seq`). Returns the records handed over."""
        sent = 0
        with self._lock:
            try:
                while self._segments:
                    segment = self._segments[0]
                    for record in self._records(segment):
                        send(record.topic, record.payload)
                        sent += 1
                    self._remove(segment)
            except Exception as exc:
                log.info("spool replay stopped after %d message(s): %s", sent, exc)
        return sent

    @staticmethod
    def usage(folder: Path) -> tuple[int, int]:
        """(messages, bytes) spooled in `folder`, read without opening a Spool (for `edgeml-agent status`)."""
        paths = sorted(folder.glob(f"*{_SUFFIX}")) if folder.is_dir() else []
        return sum(sum(1 for _ in _read(p)) for p in paths), sum(p.stat().st_size for p in paths)

    def records(self) -> Iterator[SpoolRecord]:
        """Every readable record, oldest first (for status and tests)."""
        with self._lock:
            segments = list(self._segments)
        for segment in segments:
            yield from self._records(segment)

    # ---- segments --------------------------------------------------------------------------------------

    def _path(self, segment: _Segment) -> Path:
        return self.folder / f"{segment.index:012d}{_SUFFIX}"

    def _segment_for(self, size: int) -> _Segment:
        last = self._segments[-1] if self._segments else None
        if last is None or last.sealed or (last.records and last.bytes + size > self.segment_bytes):
            last = _Segment(self._next_index)
            self._next_index += 1
            self._segments.append(last)
        return last

    def _write(self, segment: _Segment, record: bytes) -> None:
        with open(self._path(segment), "ab") as f:
            f.write(record)
            if self.durable:
                f.flush()
                os.fsync(f.fileno())
        segment.bytes += len(record)
        segment.records += 1

    def _enforce_cap(self) -> None:
        while self._segments and sum(s.bytes for s in self._segments) > self.max_bytes:
            oldest = self._segments[0]
            self.dropped += oldest.records
            log.warning("spool over %d bytes: dropping its oldest %d message(s)", self.max_bytes, oldest.records)
            self._remove(oldest)

    def _remove(self, segment: _Segment) -> None:
        self._path(segment).unlink(missing_ok=True)
        self._segments.remove(segment)

    def _scan(self, path: Path) -> _Segment:
        records = sum(1 for _ in _read(path))
        return _Segment(int(path.stem), path.stat().st_size, records, sealed=True)

    def _records(self, segment: _Segment) -> Iterator[SpoolRecord]:
        return _read(self._path(segment))


def _encode(topic: str, payload: bytes) -> bytes:
    t = topic.encode()
    return _HEADER.pack(_MAGIC, zlib.crc32(t + payload), len(t), len(payload)) + t + payload


def _read(path: Path) -> Iterator[SpoolRecord]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    offset = 0
    while offset + _HEADER.size <= len(data):
        magic, crc, tlen, plen = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        body = data[start : start + tlen + plen]
        if magic != _MAGIC or len(body) != tlen + plen or zlib.crc32(body) != crc:
            log.warning("spool segment %s is torn at byte %d; the rest of it is skipped", path.name, offset)
            return
        yield SpoolRecord(body[:tlen].decode(errors="replace"), bytes(body[tlen:]))
        offset = start + tlen + plen

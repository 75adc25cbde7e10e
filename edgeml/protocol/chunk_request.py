"""Device → fleet: the chunks of an artifact the device still lacks, as half-open index ranges.

Ranges keep the message small whatever the artifact size ([[0, 1600]] asks for a whole 100 MiB artifact
in 64 KiB chunks). At most MAX_RANGES ranges go in one request; a device with more gaps asks for the
first ones and asks again once they arrive.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from edgeml.protocol.chunks import MAX_CHUNK_COUNT, check_chunk_size
from edgeml.protocol.fields import Fields, check_int, header
from edgeml.protocol.kind import Kind
from edgeml.protocol.protocol_error import ProtocolError

__all__ = ["MAX_RANGES", "ChunkRequest"]

MAX_RANGES = 1024

Range = tuple[int, int]


@dataclass(frozen=True)
class ChunkRequest:
    """`missing`: ascending, disjoint [start, stop) ranges of chunk indices of artifact `artifact`."""

    KIND: ClassVar[Kind] = Kind.CHUNK_REQUEST

    artifact: str
    chunk_size: int
    missing: tuple[Range, ...]

    @classmethod
    def for_indices(cls, artifact: str, chunk_size: int, indices: Iterable[int]) -> ChunkRequest:
        """Build a request from chunk indices (any order, duplicates fine); keeps the first MAX_RANGES ranges."""
        return cls(artifact, chunk_size, tuple(_ranges(sorted(set(indices))))[:MAX_RANGES])

    def indices(self) -> Iterator[int]:
        for start, stop in self.missing:
            yield from range(start, stop)

    def to_dict(self) -> dict[str, Any]:
        return {
            **header(self.KIND),
            "artifact": self.artifact,
            "chunk_size": self.chunk_size,
            "missing": [list(r) for r in self.missing],
        }

    @classmethod
    def from_dict(cls, obj: Any) -> ChunkRequest:
        f = Fields.payload(obj, cls.KIND)
        chunk_size = f.integer("chunk_size")
        try:
            check_chunk_size(chunk_size)
        except ProtocolError as exc:
            raise ProtocolError("out_of_range", f"chunk_request.chunk_size: {exc.reason}") from None
        missing = tuple(_range(r, i) for i, r in enumerate(f.items("missing", MAX_RANGES)))
        _check_order(missing)
        return cls(f.sha256("artifact"), chunk_size, missing)


def _ranges(indices: list[int]) -> list[Range]:
    ranges: list[list[int]] = []
    for i in indices:
        if ranges and ranges[-1][1] == i:
            ranges[-1][1] = i + 1
        else:
            ranges.append([i, i + 1])
    return [(start, stop) for start, stop in ranges]


def _range(value: Any, i: int) -> Range:
    where = f"chunk_request.missing[{i}]"
    if not isinstance(value, list) or len(value) != 2:
        raise ProtocolError("invalid_field", f"{where} is not a [start, stop] pair")
    start = check_int(value[0], f"{where}[0]", 0, MAX_CHUNK_COUNT - 1)
    stop = check_int(value[1], f"{where}[1]", start + 1, MAX_CHUNK_COUNT)
    return start, stop


def _check_order(missing: tuple[Range, ...]) -> None:
    if not missing:
        raise ProtocolError("invalid_field", "chunk_request.missing is empty: a request asks for at least one chunk")
    for (_, stop), (start, _) in itertools.pairwise(missing):
        if start <= stop:
            raise ProtocolError("invalid_field", "chunk_request.missing ranges overlap, touch or are out of order")

"""A content-addressed cache on disk: key (a sha256 of everything that determines a result) → bytes/JSON.

Entries are written to a temporary name and renamed, so a crash never leaves a half entry that a later
run would trust. A corrupt or unreadable entry is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeml.artifact.canonical import canonical_json
from edgeml.atomic_files import write_bytes_atomic

__all__ = ["Blob", "ContentCache", "cache_key"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Blob:
    """Bytes with their sha256, computed once: large models are hashed once per compile, not per use."""

    data: bytes
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> Blob:
        return cls(data, hashlib.sha256(data).hexdigest())


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(canonical_json(parts)).hexdigest()


class ContentCache:
    def __init__(self, root: Path | None) -> None:
        self.root = root  # None disables caching

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        assert self.root is not None
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def get_bytes(self, kind: str, key: str) -> Blob | None:
        """The entry's bytes, checked against the sha256 stored beside them (a mismatch is a miss)."""
        if self.root is None:
            return None
        meta = self.get_json(kind, key)
        try:
            blob = Blob.of(self._path(kind, key, ".bin").read_bytes())
        except OSError:
            return None
        return blob if meta is not None and blob.sha256 == meta.get("_sha256") else None

    def put_bytes(self, kind: str, key: str, blob: Blob, meta: dict[str, Any]) -> None:
        if self.root is None:
            return
        self._write(self._path(kind, key, ".bin"), blob.data)
        self.put_json(kind, key, {**meta, "_sha256": blob.sha256})

    def get_json(self, kind: str, key: str) -> dict[str, Any] | None:
        if self.root is None:
            return None
        try:
            return json.loads(self._path(kind, key, ".json").read_bytes())
        except (OSError, ValueError):
            return None

    def put_json(self, kind: str, key: str, value: dict[str, Any]) -> None:
        if self.root is None:
            return
        self._write(self._path(kind, key, ".json"), json.dumps(value, sort_keys=True).encode())

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        try:
            write_bytes_atomic(path, data, durable=False)
        except OSError as exc:  # a cache that cannot be written is only slower, never wrong
            log.warning("cache entry %s not written (%s); the next run recomputes it", path.name, exc.strerror or exc)

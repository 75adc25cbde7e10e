"""A content-addressed cache on disk: key (a sha256 of everything that determines a result) → bytes/JSON.

Entries are written to a temporary name and renamed, so a crash never leaves a half entry that a later
run would trust. A corrupt or unreadable entry is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from edgeml.artifact.canonical import canonical_json

__all__ = ["ContentCache", "cache_key"]


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(canonical_json(parts)).hexdigest()


class ContentCache:
    def __init__(self, root: Path | None) -> None:
        self.root = root  # None disables caching

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        assert self.root is not None
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def get_bytes(self, kind: str, key: str) -> bytes | None:
        if self.root is None:
            return None
        path = self._path(kind, key, ".bin")
        meta = self.get_json(kind, key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if meta is None or hashlib.sha256(data).hexdigest() != meta.get("_sha256"):
            return None
        return data

    def put_bytes(self, kind: str, key: str, data: bytes, meta: dict[str, Any]) -> None:
        if self.root is None:
            return
        self._write(self._path(kind, key, ".bin"), data)
        self.put_json(kind, key, {**meta, "_sha256": hashlib.sha256(data).hexdigest()})

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
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written is only slower, never wrong

"""A model as the wire names it: name, semantic version, release number and artifact digest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeml.protocol.fields import Fields

__all__ = ["ModelRef"]


@dataclass(frozen=True)
class ModelRef:
    """Which artifact a device runs (or holds in a slot)."""

    name: str
    version: str
    release: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "release": self.release, "sha256": self.sha256}

    @classmethod
    def read(cls, f: Fields) -> ModelRef:
        return cls(f.text("name"), f.text("version", 64), f.integer("release"), f.sha256("sha256"))

    @classmethod
    def read_optional(cls, f: Fields, name: str) -> ModelRef | None:
        return cls.read(f.nested(name)) if f.present(name) else None

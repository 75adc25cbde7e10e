"""Installed versions of the tools whose output a pass or a compile depends on (for cache keys and provenance)."""

from __future__ import annotations

import functools
from importlib import metadata

__all__ = ["tool_versions"]


@functools.cache
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def tool_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    return {name: _version(name) for name in names}

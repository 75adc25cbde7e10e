"""This process's memory: resident set size now and at its peak, for telemetry and `edgeml-agent status`."""

from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass

__all__ = ["MemoryUsage", "memory_usage"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class MemoryUsage:
    rss_bytes: int
    peak_rss_bytes: int


def memory_usage() -> MemoryUsage:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_bytes = peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes
    return MemoryUsage(_current_rss() or peak_bytes, peak_bytes)


def _current_rss() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None

"""A compile's memory budget (`--max-memory`) → how many samples each streaming step holds at once.

The steps that run a model over many samples and keep what it computes — the per-layer probe (every
activation of every sample), calibration, evaluation — ask `samples_at_once(bytes_per_sample, ...)` how many
samples fit: the budget less the memory this process already holds, shared between what a step keeps and
what the runtime allocates while it computes. Without `--max-memory` the budget is a safe share of the
machine (`DEFAULT_SHARE` of the memory available when the compile starts, plus what it already holds).
However large the budget, a step never holds more than `STEP_CAP_BYTES` at once: more buys little speed.

When not even one sample fits, the step raises `MemoryBudgetError` before it allocates: the compile stops
with a message naming the step and the sizes, instead of being killed by the kernel half-way through.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from edgeml.errors import EdgemlError

__all__ = [
    "DEFAULT_SHARE",
    "STEP_CAP_BYTES",
    "MemoryBudget",
    "MemoryBudgetError",
    "current_budget",
    "current_rss_bytes",
    "default_budget",
    "memory_budget",
    "parse_memory_size",
]

DEFAULT_SHARE = 0.6
STEP_CAP_BYTES = 1 << 30
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class MemoryBudgetError(EdgemlError):
    """The compile cannot stay within its memory budget (`--max-memory`)."""


@dataclass(frozen=True)
class MemoryBudget:
    limit_bytes: int  # the resident memory the whole compile may reach
    given: bool = False  # set by the user (--max-memory), not derived from the machine
    held_bytes: Callable[[], int] = field(default=lambda: current_rss_bytes(), compare=False)  # held now

    def headroom(self) -> int:
        """What the budget leaves beside what this process holds now."""
        return self.limit_bytes - self.held_bytes()

    def samples_at_once(self, bytes_per_sample: float, step: str, most: int, cap: int = STEP_CAP_BYTES) -> int:
        """How many samples `step` may hold at once (1 ≤ n ≤ `most`) when each costs `bytes_per_sample`
        (kept and transient together); MemoryBudgetError when not even one fits."""
        room = self.headroom()
        if bytes_per_sample > room:
            raise MemoryBudgetError(
                f"{step} needs about {_size(bytes_per_sample)} for one sample, but the memory budget of "
                f"{_size(self.limit_bytes)} leaves {_size(max(room, 0))} beside the {_size(self.held_bytes())} "
                "this compile already holds",
                _hint(self.given),
            )
        return max(1, min(most, int(min(room, cap) // max(bytes_per_sample, 1))))

    def fits(self, total_bytes: float, share: float = 1 / 3) -> bool:
        """Whether `total_bytes` may be kept for the rest of a step (at most `share` of the headroom, and
        at most STEP_CAP_BYTES)."""
        return total_bytes <= min(self.headroom() * share, STEP_CAP_BYTES)


def _hint(given: bool) -> str:
    if given:
        return "raise --max-memory, or feed smaller samples (a lower input resolution)"
    return "free memory on this machine or pass a larger --max-memory, or feed smaller samples"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def parse_memory_size(text: str | int) -> int:
    """'4G', '4 GB', '512MiB', '1.5g' or a byte count → bytes (powers of 1024)."""
    if isinstance(text, int):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(text).lower())
        if m is None:
            raise MemoryBudgetError(f"--max-memory {text!r} is not a size", "write it like 4G, 512M or 6GiB")
        value = int(float(m.group(1)) * _UNITS[m.group(2)])
    if value <= 0:
        raise MemoryBudgetError(f"--max-memory {text!r} is not a positive size", "write it like 4G, 512M or 6GiB")
    return value


def current_rss_bytes() -> int:
    """This process's resident memory now (0 where the OS does not say)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return None


def default_budget() -> MemoryBudget:
    available = _available_bytes()
    if available is None:
        return MemoryBudget(1 << 50)  # NOTE: the OS does not say: no budget
    return MemoryBudget(int(available * DEFAULT_SHARE) + current_rss_bytes())


_BUDGET: contextvars.ContextVar[MemoryBudget | None] = contextvars.ContextVar("edgeml_memory_budget", default=None)


def current_budget() -> MemoryBudget:
    """The budget of the compile running in this context (a safe share of the machine outside one)."""
    return _BUDGET.get() or default_budget()


@contextlib.contextmanager
def memory_budget(max_memory: str | int | MemoryBudget | None) -> Iterator[MemoryBudget]:
    """The steps run inside honour `max_memory` (None: a safe share of the machine)."""
    if isinstance(max_memory, MemoryBudget):
        budget = max_memory
    elif max_memory is not None:
        budget = MemoryBudget(parse_memory_size(max_memory), given=True)
    else:
        budget = default_budget()
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)

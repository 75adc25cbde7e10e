"""How the compiler reports progress without printing: an observer the CLI renders with rich."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullProgress", "Progress"]


class Progress(Protocol):
    def step(self, label: str) -> None:
        """A step that may take a while has started."""

    def finished(self, label: str, detail: str) -> None:
        """The step ended; `detail` says how (e.g. "cached", "0.8 s")."""

    def note(self, message: str) -> None:
        """Something the user should read (a decision, a fallback, a default used)."""


class NullProgress:
    def step(self, label: str) -> None:
        pass

    def finished(self, label: str, detail: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass

"""The outcome of one update (or of resume() ending an interrupted one), as the caller and the fleet see it."""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.device_agent.update.lifecycle import State
from edgeml.device_agent.update.self_test import SelfTestReport

__all__ = ["InstallResult"]


@dataclass(frozen=True)
class InstallResult:
    outcome: State  # COMMITTED, ROLLED_BACK or REFUSED
    active_slot: str | None  # the slot serving after the install ("a" | "b" | None)
    name: str | None = None
    version: str | None = None
    release: int | None = None
    code: str | None = None  # why it was refused or rolled back (see install_failure.py); None when committed
    reason: str | None = None
    hint: str | None = None
    self_test: SelfTestReport | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is State.COMMITTED

    def describe(self) -> str:
        what = f"{self.name} {self.version} (release {self.release})" if self.name else "the update"
        if self.ok:
            return f"{what} committed in slot {self.active_slot}"
        how = "refused" if self.outcome is State.REFUSED else "rolled back"
        return f"{what} {how} [{self.code}]: {self.reason}" + (f"\n  hint: {self.hint}" if self.hint else "")

"""What the agent must remember across power cuts, as immutable records ↔ the JSON kept in `state.json`.

One `AgentState` holds: the lifecycle state, the update in progress, what each model slot (A/B) holds
and which one serves, the highest release ever committed (releases only move forward), and the last
failure. Records are frozen: every change makes a new state, which the store persists before the step.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from edgeml.artifact.canonical import canonical_json
from edgeml.device_agent.lifecycle import IN_PROGRESS, State

__all__ = [
    "SLOT_NAMES",
    "STATE_SCHEMA_VERSION",
    "AgentState",
    "Failure",
    "SlotRecord",
    "UpdateRecord",
    "manifest_digest",
]

STATE_SCHEMA_VERSION = 1
SLOT_NAMES = ("a", "b")


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the canonical signed manifest: names an artifact's exact content (it lists every file's sha256)."""
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


@dataclass(frozen=True)
class SlotRecord:
    """A verified artifact in a slot: `digest` is the sha256 of its canonical signed manifest."""

    digest: str
    name: str
    version: str
    release: int

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> SlotRecord:
        return cls(manifest_digest(manifest), manifest["name"], manifest["version"], manifest["release"])


@dataclass(frozen=True)
class UpdateRecord:
    """The update under way (kept after it ends until the next one starts, so status can report it)."""

    source: str  # the artifact folder or .tar being installed
    slot: str  # the slot it goes into: always the inactive one
    allow_rollback: bool = False
    started_at: float = field(default_factory=time.time)
    digest: str | None = None  # known once verified
    name: str | None = None
    version: str | None = None
    release: int | None = None

    def describe(self) -> str:
        return f"{self.name} {self.version} (release {self.release})" if self.name else self.source


@dataclass(frozen=True)
class Failure:
    code: str  # machine-readable: "wrong_key", "wrong_target", "self_test_mismatch", "disk_full", ...
    reason: str  # one sentence naming the culprit
    hint: str | None = None  # the next step
    release: int | None = None
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class AgentState:
    lifecycle: State = State.IDLE
    active: str | None = None  # "a" | "b" | None before the first commit
    slots: dict[str, SlotRecord | None] = field(default_factory=lambda: dict.fromkeys(SLOT_NAMES))
    committed_release: int | None = None  # the highest release ever committed here
    update: UpdateRecord | None = None
    last_failure: Failure | None = None

    @property
    def inactive(self) -> str:
        return SLOT_NAMES[1] if self.active == SLOT_NAMES[0] else SLOT_NAMES[0]

    def with_slot(self, slot: str, record: SlotRecord | None) -> AgentState:
        return replace(self, slots={**self.slots, slot: record})

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": STATE_SCHEMA_VERSION,
            "lifecycle": self.lifecycle.value,
            "active": self.active,
            "slots": {name: None if rec is None else asdict(rec) for name, rec in self.slots.items()},
            "committed_release": self.committed_release,
            "update": None if self.update is None else asdict(self.update),
            "last_failure": None if self.last_failure is None else asdict(self.last_failure),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentState:
        """Rebuild a state from its JSON form; KeyError/TypeError/ValueError when the shape is wrong."""
        if d.get("schema_version") != STATE_SCHEMA_VERSION:
            raise ValueError(f"state schema_version {d.get('schema_version')!r} is not {STATE_SCHEMA_VERSION}")
        slots = {name: _optional(SlotRecord, d["slots"][name]) for name in SLOT_NAMES}
        state = cls(
            lifecycle=State(d["lifecycle"]),
            active=d["active"],
            slots=slots,
            committed_release=d["committed_release"],
            update=_optional(UpdateRecord, d["update"]),
            last_failure=_optional(Failure, d["last_failure"]),
        )
        if state.active is not None and (state.active not in SLOT_NAMES or slots[state.active] is None):
            raise ValueError(f"active slot {state.active!r} is unknown or holds nothing")
        if state.lifecycle in IN_PROGRESS and state.update is None:
            raise ValueError(f"lifecycle {state.lifecycle.value!r} has no update record")
        return state


def _optional(kind: type, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"expected an object for {kind.__name__}, got {type(value).__name__}")
    return kind(**value)

"""What the agent must remember across power cuts, as immutable records ↔ the JSON kept in `state.json`.

One `AgentState` holds everything the update path needs, in one file: the lifecycle state; the update under
way (the signed desired state as received, the slot it goes into, the download checkpoint); what each
model slot (A/B) holds — with the sha256 of the artifact file the fleet sent, so the fleet's names and the
device's line up — and which one serves; the highest release ever committed (releases only move forward);
the last desired-state sequence accepted (replays change nothing); and the last failure. Records are
frozen: every change makes a new state, which the store persists before the step it enables.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from edgeml.artifact.canonical import canonical_json
from edgeml.device_agent.update.lifecycle import IN_PROGRESS, State

__all__ = [
    "SLOT_NAMES",
    "STATE_SCHEMA_VERSION",
    "AgentState",
    "Failure",
    "SlotRecord",
    "UpdateRecord",
    "manifest_digest",
]

STATE_SCHEMA_VERSION = 2  # 1: before the update path was one table (see state_migration.py)
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
    artifact: str | None = None  # sha256 of the artifact file the fleet sent; None when installed from a local file

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], artifact: str | None = None) -> SlotRecord:
        return cls(manifest_digest(manifest), manifest["name"], manifest["version"], manifest["release"], artifact)

    @property
    def sha256(self) -> str:
        """The name the fleet knows this model by: its artifact's sha256, else the manifest digest."""
        return self.artifact or self.digest


@dataclass(frozen=True)
class UpdateRecord:
    """The update under way (kept after it ends until the next one starts, so status can report it)."""

    slot: str  # the slot it goes into: always the inactive one
    source: str | None = None  # the artifact (folder or .tar) once it is on the device
    allow_rollback: bool = False
    started_at: float = field(default_factory=time.time)
    desired: str | None = None  # the signed desired state as received (base64); None for a local install
    artifact: str | None = None  # the fleet's sha256 of the artifact file
    rollout_id: str | None = None
    received: str | None = None  # download checkpoint: base64 bitmap of the chunks safely on disk
    digest: str | None = None  # known once verified
    name: str | None = None  # claimed by the desired state, then read from the verified manifest
    version: str | None = None
    release: int | None = None
    min_release: int | None = None  # the anti-rollback floor the fleet signed with it (None: the device's own)

    def describe(self) -> str:
        return f"{self.name} {self.version} (release {self.release})" if self.name else str(self.source)


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
    desired_sequence: int = 0  # the last desired-state sequence accepted (0: none yet)

    @property
    def inactive(self) -> str:
        return SLOT_NAMES[1] if self.active == SLOT_NAMES[0] else SLOT_NAMES[0]

    def slot_of(self, artifact: str) -> str | None:
        """The slot holding the fleet's artifact `artifact` (a sha256), if any."""
        return next((slot for slot, rec in self.slots.items() if rec is not None and rec.artifact == artifact), None)

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
            "desired_sequence": self.desired_sequence,
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
            desired_sequence=d["desired_sequence"],
        )
        _check(state)
        return state


def _check(state: AgentState) -> None:
    if state.active is not None and (state.active not in SLOT_NAMES or state.slots[state.active] is None):
        raise ValueError(f"active slot {state.active!r} is unknown or holds nothing")
    if state.lifecycle in IN_PROGRESS and state.update is None:
        raise ValueError(f"lifecycle {state.lifecycle.value!r} has no update record")
    if isinstance(state.desired_sequence, bool) or not isinstance(state.desired_sequence, int):
        raise TypeError(f"desired_sequence {state.desired_sequence!r} is not an integer")
    if state.desired_sequence < 0:
        raise ValueError(f"desired_sequence {state.desired_sequence} is negative")


def _optional(kind: type, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"expected an object for {kind.__name__}, got {type(value).__name__}")
    return kind(**value)

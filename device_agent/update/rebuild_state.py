"""Slot folders → a fresh AgentState, for when `state.json` is lost or corrupt.

Without the state file nobody vouches for either slot, so each one must prove itself again: it must
verify against the pinned key, be built for this device's target, and pass its self-test. The proven
slot with the highest release becomes active, the other proven one (if any) stays as the fallback, and
the rebuilt state records the event as `last_failure` (code `state_rebuilt`). The highest committed
release falls back to the active one's: the history the lost file held is gone, and the log says so.
What the store could still read of the damaged file (`StateStore.salvage`) is kept: the last desired-state
sequence accepted, and the fleet's name (sha256) of each slot's artifact. When the sequence is lost too,
replay protection restarts at the next desired state (releases still only move forward), and the reason
says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.artifact import verify
from edgeml.device_agent.update.agent_state import SLOT_NAMES, AgentState, Failure, SlotRecord
from edgeml.device_agent.update.slots import Slots
from edgeml.errors import EdgemlError

__all__ = ["rebuild_state"]

log = logging.getLogger(__name__)

# (slot folder, manifest) → None, or raises EdgemlError: the installer passes its own self-test runner.
Prove = Callable[[Path, dict[str, Any]], None]


def rebuild_state(
    slots: Slots, key: Ed25519PublicKey, device_target: str, prove: Prove, why: str,
    salvaged: tuple[int, dict[str, str]] = (0, {}),
) -> AgentState:  # fmt: skip
    sequence, names = salvaged
    proven = {slot: record for slot in SLOT_NAMES if (record := _prove_slot(slots, slot, key, device_target, prove))}
    proven = {slot: replace(record, artifact=names.get(record.digest)) for slot, record in proven.items()}
    active = max(proven, key=lambda s: proven[s].release, default=None)
    reason = f"agent state rebuilt from the slots ({why}); " + (
        f"slot {active} ({proven[active].name} {proven[active].version}) serves"
        if active
        else "no slot holds a proven model: the device waits for an update"
    )
    if not sequence:
        reason += "; the last desired-state sequence was lost: the next signed desired state is taken as the newest"
    log.error("%s", reason)
    return AgentState(
        active=active,
        slots={slot: proven.get(slot) for slot in SLOT_NAMES},
        committed_release=proven[active].release if active else None,
        last_failure=Failure("state_rebuilt", reason, "check the storage of this device if it happens again"),
        desired_sequence=sequence,
    )


def _prove_slot(slots: Slots, slot: str, key: Ed25519PublicKey, device_target: str, prove: Prove) -> SlotRecord | None:
    path = slots.path(slot)
    if not path.is_dir():
        return None
    try:
        manifest = verify(path, key).manifest
        if manifest["target"]["id"] != device_target:
            raise EdgemlError(f"built for target {manifest['target']['id']!r}, not {device_target!r}")
        prove(path, manifest)
    except (EdgemlError, OSError) as exc:
        log.warning("slot %s does not prove itself and is dropped: %s", slot, exc)
        return None
    return SlotRecord.from_manifest(manifest)

"""The five files an agent before schema 2 kept its update state in → one `AgentState`.

    state.json (schema 1)               the installer's lifecycle, slots, highest release, last failure
    agent/guard.json                    {"v": 1, "last_sequence": N}: the desired-state guard
    agent/job.json                      {"v": 1, "desired": base64}: the accepted desired state under way
    agent/artifacts.json                slot → {"sha256", "digest"}: the fleet's name of each slot's artifact
    downloads/<sha256>.tar.partial.state  the download's chunk bitmap

`StateStore.load()` reads them through `read_legacy` (so `edgeml-agent status` works on a folder not yet
migrated); `Installer.resume()` at the next start writes the new `state.json` and only then removes the old
files, so a power cut in between migrates again from the same files. An install the old installer had under
way keeps its state (its `downloading` was "the file is on the device": `accepted` now); an update the old
worker was fetching becomes `accepted` with its checkpoint, so the download resumes where it stopped.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgeml.atomic_files import read_json
from edgeml.device_agent.update.agent_state import STATE_SCHEMA_VERSION, AgentState, SlotRecord, UpdateRecord
from edgeml.device_agent.update.lifecycle import IN_PROGRESS, State
from edgeml.protocol import ProtocolError, SignedDesiredState, decode

__all__ = ["legacy_files", "read_legacy"]

log = logging.getLogger(__name__)

_GUARD, _JOB, _ARTIFACTS = "agent/guard.json", "agent/job.json", "agent/artifacts.json"
_V1_LIFECYCLE = {"idle": State.IDLE, "downloading": State.ACCEPTED, "verifying": State.VERIFYING,
                 "installing": State.INSTALLING, "self_test": State.SELF_TEST, "committed": State.COMMITTED,
                 "rolled_back": State.ROLLED_BACK}  # fmt: skip


def legacy_files(state_dir: Path) -> list[Path]:
    """The pre-schema-2 update files present in `state_dir` (not counting a schema 1 state.json)."""
    named = [state_dir / rel for rel in (_GUARD, _JOB, _ARTIFACTS)]
    partial = sorted((state_dir / "downloads").glob("*.tar.partial.state"))
    return [p for p in named if p.exists()] + partial


def read_legacy(state_dir: Path, v1: dict[str, Any] | None) -> AgentState:
    """The state the old files describe; `v1` is the parsed schema 1 state.json (None if there was none).
    ValueError/KeyError/TypeError when `v1` itself is malformed."""
    state = _from_v1(v1) if v1 is not None else AgentState()
    state = replace(state, desired_sequence=_guard_sequence(state_dir / _GUARD), slots=_named_slots(state, state_dir))
    job = _job(state_dir / _JOB)
    if job is None:
        return state
    update = _job_update(job, state, state_dir)
    if update is None:
        return state
    if state.lifecycle in IN_PROGRESS and state.update is not None:  # the old installer had the file already
        merged = replace(update, source=state.update.source, slot=state.update.slot, received=None)
        return replace(state, update=merged)
    return replace(state, lifecycle=State.ACCEPTED, update=update)


def _from_v1(d: dict[str, Any]) -> AgentState:
    """Schema 1 → 2: the same records (an update gains the fields of a fleet job), checked like any state."""
    if d.get("schema_version") != 1:
        raise ValueError(f"state schema_version {d.get('schema_version')!r} is neither 1 nor 2")
    lifecycle = _V1_LIFECYCLE[d["lifecycle"]].value
    return AgentState.from_dict({**d, "schema_version": STATE_SCHEMA_VERSION, "lifecycle": lifecycle,
                                 "desired_sequence": 0})  # fmt: skip


def _guard_sequence(path: Path) -> int:
    try:
        saved = read_json(path)
    except (OSError, ValueError) as exc:
        log.error("the old guard file %s is unreadable (%s): replay protection restarts at the next desired "
                  "state", path, exc)  # fmt: skip
        return 0
    last = saved.get("last_sequence") if isinstance(saved, dict) else None
    return last if isinstance(last, int) and not isinstance(last, bool) and last > 0 else 0


def _named_slots(state: AgentState, state_dir: Path) -> dict[str, SlotRecord | None]:
    try:
        index = read_json(state_dir / _ARTIFACTS)
    except (OSError, ValueError):
        index = None
    index = index if isinstance(index, dict) else {}
    slots = dict(state.slots)
    for slot, record in state.slots.items():
        entry = index.get(slot)
        if record is not None and isinstance(entry, dict) and entry.get("digest") == record.digest:
            slots[slot] = replace(record, artifact=entry.get("sha256"))
    return slots


def _job(path: Path) -> bytes | None:
    try:
        saved = read_json(path)
        return base64.b64decode(saved["desired"]) if saved else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("the old update record %s is unreadable (%s); the fleet's desired state restarts it", path, exc)
        return None


def _job_update(payload: bytes, state: AgentState, state_dir: Path) -> UpdateRecord | None:
    try:
        desired = decode(SignedDesiredState.KIND, payload).state  # type: ignore[union-attr]
    except ProtocolError as exc:  # NOTE: the signature is checked again when the update goes on
        log.error("the old update record does not decode ([%s] %s); dropping it", exc.code, exc.reason)
        return None
    a = desired.artifact
    return UpdateRecord(
        state.inactive, allow_rollback=desired.allow_rollback, desired=base64.b64encode(payload).decode(),
        artifact=a.sha256, rollout_id=desired.rollout_id, received=_checkpoint(state_dir, a.sha256),
        name=a.name, version=a.version, release=a.release,
    )  # fmt: skip


def _checkpoint(state_dir: Path, sha256: str) -> str | None:
    try:
        saved = read_json(state_dir / "downloads" / f"{sha256}.tar.partial.state")
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("layout"), list) or saved["layout"][:1] != [sha256]:
        return None
    received = saved.get("received")
    return received if isinstance(received, str) else None

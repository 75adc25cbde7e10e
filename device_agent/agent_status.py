"""The agent's state folder → a status report: lifecycle state, slots and their versions, the update
under way (all from the one state file), spool size, last telemetry batch, and whether an agent process is
running. Read from disk only, so `edgeml-agent status` works beside a running agent (or without one) and
never needs the broker.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

from edgeml.atomic_files import read_json
from edgeml.device_agent.config.agent_config import AgentConfig
from edgeml.device_agent.messaging.spool import Spool
from edgeml.device_agent.update.agent_state import AgentState, SlotRecord
from edgeml.device_agent.update.lifecycle import IN_PROGRESS, RESUMABLE
from edgeml.device_agent.update.state_store import StateFileError, StateStore
from edgeml.protocol import ProtocolError, SignedDesiredState, decode
from edgeml.transport.broker_url import redact_broker_url

__all__ = ["AGENT_FOLDER", "HEARTBEAT_NAME", "LAST_TELEMETRY_NAME", "read_status"]

AGENT_FOLDER = "agent"  # under state_dir: the agent process's own files (sequence counters, heartbeat, summary)
HEARTBEAT_NAME = "agent.json"
LAST_TELEMETRY_NAME = "last_telemetry.json"
_STALE_S = 30.0  # a heartbeat older than this means the agent process is gone or stuck


def read_status(config: AgentConfig) -> dict[str, Any]:
    state_dir = config.state_dir
    folder = state_dir / AGENT_FOLDER
    messages, spooled = Spool.usage(state_dir / "spool")
    try:
        state: AgentState | None = StateStore(state_dir).load()
    except StateFileError as exc:
        lifecycle: dict[str, Any] = {"lifecycle": "corrupt", "error": exc.message, "slots": {}, "active": None}
        state = None
    else:
        lifecycle = _lifecycle(state)
    return {
        "device_id": config.agent.device_id,
        "target": config.agent.target,
        "state_dir": str(state_dir),
        "broker": redact_broker_url(config.broker.url),  # NOTE: never show the password
        **lifecycle,
        "update": _update(state),
        "spool": {"messages": messages, "bytes": spooled, "max_bytes": config.telemetry.spool_max_bytes},
        "last_telemetry": _read(folder / LAST_TELEMETRY_NAME),
        "process": _process(folder / HEARTBEAT_NAME),
    }


def _lifecycle(state: AgentState | None) -> dict[str, Any]:
    if state is None:
        return {"lifecycle": "new", "slots": {}, "active": None, "committed_release": None, "last_failure": None}
    slots = {name: None if rec is None else _slot(rec) for name, rec in state.slots.items()}
    failure = state.last_failure
    last = None if failure is None else {"code": failure.code, "reason": failure.reason, "at": failure.at}
    return {
        "lifecycle": state.lifecycle.value,
        "active": state.active,
        "slots": slots,
        "committed_release": state.committed_release,
        "last_failure": last,
        "desired_sequence": state.desired_sequence or None,
    }


def _slot(rec: SlotRecord) -> dict[str, Any]:
    return {"name": rec.name, "version": rec.version, "release": rec.release, "artifact": rec.artifact,
            "manifest_digest": rec.digest}  # fmt: skip


def _update(state: AgentState | None) -> dict[str, Any] | None:
    """The update the fleet sent that is still under way, with the chunks the last checkpoint holds."""
    if state is None or state.lifecycle not in IN_PROGRESS or state.update is None or state.update.desired is None:
        return None
    u = state.update
    try:
        desired = decode(SignedDesiredState.KIND, base64.b64decode(u.desired)).state  # type: ignore[union-attr]
    except (ProtocolError, ValueError):
        return {"error": "the saved update record does not decode"}
    chunks = desired.artifact.chunk_count
    received = _popcount(u.received) if state.lifecycle in RESUMABLE else chunks
    return {"name": u.name, "version": u.version, "release": u.release, "artifact": u.artifact,
            "rollout_id": u.rollout_id, "sequence": desired.sequence, "state": state.lifecycle.value,
            "chunks": chunks, "received": min(received, chunks)}  # fmt: skip


def _process(path: Path) -> dict[str, Any]:
    beat = _read(path)
    if not isinstance(beat, dict):
        return {"running": False}
    pid, updated = beat.get("pid"), beat.get("updated_at", 0)
    alive = isinstance(pid, int) and _alive(pid) and time.time() - float(updated) < _STALE_S
    return {**beat, "running": alive}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _popcount(bitmap: Any) -> int:
    try:
        return sum(bin(b).count("1") for b in base64.b64decode(bitmap or ""))
    except (ValueError, TypeError):
        return 0

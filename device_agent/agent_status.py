"""The agent's state folder → a status report: lifecycle state, slots and their versions, the update
under way, spool size, last telemetry batch, and whether an agent process is running. Read from disk
only, so `edgeml-agent status` works beside a running agent (or without one) and never needs the broker.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

from edgeml.device_agent.agent_config import AgentConfig
from edgeml.device_agent.agent_state import SlotRecord
from edgeml.device_agent.atomic_json import read_json
from edgeml.device_agent.spool import Spool
from edgeml.device_agent.state_store import StateFileError, StateStore
from edgeml.device_agent.update_store import UpdateStore
from edgeml.protocol import ProtocolError, SignedDesiredState, decode

__all__ = ["HEARTBEAT_NAME", "LAST_TELEMETRY_NAME", "read_status"]

HEARTBEAT_NAME = "agent.json"
LAST_TELEMETRY_NAME = "last_telemetry.json"
_STALE_S = 30.0  # a heartbeat older than this means the agent process is gone or stuck


def read_status(config: AgentConfig) -> dict[str, Any]:
    state_dir = config.state_dir
    store = UpdateStore(state_dir)
    messages, spooled = Spool.usage(state_dir / "spool")
    return {
        "device_id": config.agent.device_id,
        "target": config.agent.target,
        "state_dir": str(state_dir),
        "broker": config.broker.url,
        **_lifecycle(state_dir, store),
        "update": _update(store, state_dir / "downloads"),
        "spool": {"messages": messages, "bytes": spooled, "max_bytes": config.telemetry.spool_max_bytes},
        "last_telemetry": _read(store.folder / LAST_TELEMETRY_NAME),
        "process": _process(store.folder / HEARTBEAT_NAME),
    }


def _lifecycle(state_dir: Path, store: UpdateStore) -> dict[str, Any]:
    try:
        state = StateStore(state_dir).load()
    except StateFileError as exc:
        return {"lifecycle": "corrupt", "error": exc.message, "slots": {}, "active": None}
    if state is None:
        return {"lifecycle": "new", "slots": {}, "active": None, "committed_release": None, "last_failure": None}
    slots = {name: None if rec is None else _slot(store, name, rec) for name, rec in state.slots.items()}
    failure = state.last_failure
    last = None if failure is None else {"code": failure.code, "reason": failure.reason, "at": failure.at}
    return {
        "lifecycle": state.lifecycle.value,
        "active": state.active,
        "slots": slots,
        "committed_release": state.committed_release,
        "last_failure": last,
    }


def _slot(store: UpdateStore, name: str, rec: SlotRecord) -> dict[str, Any]:
    return {"name": rec.name, "version": rec.version, "release": rec.release,
            "artifact": store.artifact_sha256(name, rec.digest), "manifest_digest": rec.digest}  # fmt: skip


def _update(store: UpdateStore, downloads: Path) -> dict[str, Any] | None:
    payload = store.job()
    if payload is None:
        return None
    try:
        desired = decode(SignedDesiredState.KIND, payload).state  # type: ignore[union-attr]
    except ProtocolError:
        return {"error": "the saved update record does not decode"}
    a = desired.artifact
    state = _read(downloads / f"{a.sha256}.tar.partial.state")
    received = _popcount(state.get("received")) if isinstance(state, dict) else 0
    if (downloads / f"{a.sha256}.tar").is_file():
        received = a.chunk_count
    return {"name": a.name, "version": a.version, "release": a.release, "artifact": a.sha256,
            "rollout_id": desired.rollout_id, "sequence": desired.sequence, "chunks": a.chunk_count,
            "received": min(received, a.chunk_count)}  # fmt: skip


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

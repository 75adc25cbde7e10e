"""AgentState ↔ `state_dir/state.json`, the one file the update path keeps its state in, written atomically
(`edgeml.atomic_files`: temp file, fsync, os.replace, fsync the folder).

A power cut at any instant leaves either the previous state file or the new one, never a torn one.
A state file that is unreadable anyway (bit rot, hand edits, a filesystem that broke its promises)
raises `StateFileError`; it is never silently replaced here. `Installer.resume()` catches it, moves
the file aside as evidence and rebuilds the state from the slots (see `rebuild_state.py`), keeping what
`salvage()` can still read of it. A folder an older agent wrote (schema 1 and its side files) is read
through `state_migration.py` and rewritten as one file by `migrate()`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeml.atomic_files import fsync_dir, stale_temp_files, write_bytes_atomic
from edgeml.device_agent.update.agent_state import AgentState
from edgeml.device_agent.update.state_migration import legacy_files, read_legacy
from edgeml.errors import EdgemlError

__all__ = ["STATE_NAME", "StateFileError", "StateStore"]

log = logging.getLogger(__name__)

STATE_NAME = "state.json"
_LOCK_NAME = "agent.lock"


class StateFileError(EdgemlError):
    """The persisted agent state cannot be read or written."""


class StateStore:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / STATE_NAME

    def load(self) -> AgentState | None:
        """The persisted state, None on a device that never had one, StateFileError if it is unreadable."""
        raw = self._read()
        try:
            if raw is None:
                return read_legacy(self.state_dir, None) if legacy_files(self.state_dir) else None
            if isinstance(raw, dict) and raw.get("schema_version") == 1:
                return read_legacy(self.state_dir, raw)
            return AgentState.from_dict(raw)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StateFileError(
                f"agent state {self.path} is corrupt ({type(exc).__name__}: {exc})",
                "Installer.resume() moves it aside and rebuilds the state from the verified slots",
            ) from exc

    def save(self, state: AgentState) -> AgentState:
        """Persist `state` atomically and durably; return it. On failure the previous file is intact."""
        data = json.dumps(state.to_dict(), indent=1, sort_keys=True).encode() + b"\n"
        try:
            write_bytes_atomic(self.path, data)
        except OSError as exc:
            raise StateFileError(
                f"cannot write agent state {self.path}: {exc.strerror or exc}",
                "free space or fix permissions on the state folder; the previous state is still in place",
            ) from exc
        return state

    def migrate(self, state: AgentState) -> bool:
        """After `state` was loaded from an older agent's files: write it as one file, then remove the old ones."""
        old = legacy_files(self.state_dir)
        raw = self._read_quietly()
        if not old and not (isinstance(raw, dict) and raw.get("schema_version") == 1):
            return False
        self.save(state)
        for path in old:
            path.unlink(missing_ok=True)
        for folder in {path.parent for path in old}:
            fsync_dir(folder)
        log.info("agent state migrated into %s (removed %s)", self.path, ", ".join(p.name for p in old) or "nothing")
        return True

    def salvage(self) -> tuple[int, dict[str, str]]:
        """What an unreadable state file (or an older agent's guard file) still tells, for the rebuild: the last
        desired sequence accepted (0 when lost) and the fleet's sha256 per manifest digest."""
        raw = self._read_quietly()
        raw = raw if isinstance(raw, dict) else {}
        slots = raw.get("slots") if isinstance(raw.get("slots"), dict) else {}
        named = {r["digest"]: r["artifact"] for r in slots.values() if isinstance(r, dict) and r.get("artifact")}
        sequence = raw.get("desired_sequence")
        if isinstance(sequence, int) and not isinstance(sequence, bool) and sequence > 0:
            return sequence, named
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return read_legacy(self.state_dir, None).desired_sequence, named
        return 0, named

    def remove_stale_temp(self) -> None:
        """Delete temp files a power cut left mid-write (the state file itself is always whole)."""
        for tmp in stale_temp_files(self.path):
            log.info("removing %s, left by an interrupted state write", tmp)
            tmp.unlink(missing_ok=True)

    def set_aside(self) -> Path:
        """Move an unreadable state file out of the way (kept as evidence); return where it went."""
        aside = self.path.with_name(f"{STATE_NAME}.corrupt-{int(time.time())}")
        os.replace(self.path, aside)
        fsync_dir(self.state_dir)
        log.error("agent state %s is unreadable; kept as %s", self.path, aside)
        return aside

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the state folder: one agent process installs at a time."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StateFileError(
                    f"another agent process holds {self.state_dir / _LOCK_NAME}",
                    "run one device agent per state folder; stop the other one first",
                ) from None
            yield
        finally:
            os.close(fd)

    def _read(self) -> Any:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateFileError(f"cannot read agent state {self.path}: {exc.strerror}", "check the disk") from exc
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StateFileError(
                f"agent state {self.path} is corrupt (not JSON: {exc})",
                "Installer.resume() moves it aside and rebuilds the state from the verified slots",
            ) from exc

    def _read_quietly(self) -> Any:
        try:
            return self._read()
        except StateFileError:
            return None

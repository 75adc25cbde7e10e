"""AgentState ↔ `state_dir/state.json`, written atomically: temp file, fsync, os.replace, fsync the folder.

A power cut at any instant leaves either the previous state file or the new one, never a torn one.
A state file that is unreadable anyway (bit rot, hand edits, a filesystem that broke its promises)
raises `StateFileError`; it is never silently replaced here. `Installer.resume()` catches it, moves
the file aside as evidence and rebuilds the state from the slots (see `rebuild_state.py`).
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

from edgeml.device_agent.agent_state import AgentState
from edgeml.errors import EdgemlError

__all__ = ["STATE_NAME", "StateFileError", "StateStore", "fsync_dir"]

log = logging.getLogger(__name__)

STATE_NAME = "state.json"
_LOCK_NAME = "agent.lock"


class StateFileError(EdgemlError):
    """The persisted agent state cannot be read or written."""


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StateStore:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / STATE_NAME

    def load(self) -> AgentState | None:
        """The persisted state, None on a device that never had one, StateFileError if it is unreadable."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateFileError(f"cannot read agent state {self.path}: {exc.strerror}", "check the disk") from exc
        try:
            return AgentState.from_dict(json.loads(data))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StateFileError(
                f"agent state {self.path} is corrupt ({type(exc).__name__}: {exc})",
                "Installer.resume() moves it aside and rebuilds the state from the verified slots",
            ) from exc

    def save(self, state: AgentState) -> AgentState:
        """Persist `state` atomically and durably; return it. On failure the previous file is intact."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = json.dumps(state.to_dict(), indent=1, sort_keys=True).encode() + b"\n"
        tmp = self.path.with_name(f".{STATE_NAME}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            fsync_dir(self.state_dir)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StateFileError(
                f"cannot write agent state {self.path}: {exc.strerror or exc}",
                "free space or fix permissions on the state folder; the previous state is still in place",
            ) from exc
        return state

    def remove_stale_temp(self) -> None:
        """Delete temp files a power cut left mid-write (the state file itself is always whole)."""
        for tmp in self.state_dir.glob(f".{STATE_NAME}.*.tmp"):
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

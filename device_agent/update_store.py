"""What the update side of the agent remembers across restarts, under `state_dir/agent/`:

    guard.json       the desired-state guard's state (last accepted sequence); corrupt → refuse, never reset
    job.json         the accepted desired state still being fetched or installed (its signed bytes)
    artifacts.json   slot → sha256 of the artifact file the fleet sent and the manifest digest it held

The installer knows slots by manifest digest; the fleet knows artifacts by the sha256 of the file it
chunked. `artifacts.json` links the two, so the agent can report the fleet's names in its status and
telemetry, see that a desired state is already served, and re-activate an artifact still held in the
other slot without downloading it again.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

from edgeml.device_agent.atomic_json import read_json, write_json
from edgeml.errors import EdgemlError

__all__ = ["UpdateStore"]

log = logging.getLogger(__name__)


class UpdateStore:
    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / "agent"
        self.guard_path = self.folder / "guard.json"
        self.job_path = self.folder / "job.json"
        self.artifacts_path = self.folder / "artifacts.json"

    def guard_state(self) -> dict[str, Any] | None:
        """The persisted guard state (None on a new device); EdgemlError when unreadable."""
        try:
            return read_json(self.guard_path)
        except (OSError, ValueError) as exc:
            raise EdgemlError(
                f"the desired-state guard file {self.guard_path} is unreadable ({exc})",
                "restore it from a backup; resetting it would let old desired states be replayed",
            ) from exc

    def save_guard(self, state: dict[str, Any]) -> None:
        write_json(self.guard_path, state)

    def job(self) -> bytes | None:
        """The signed desired state of the update under way, as received; None when there is none."""
        try:
            saved = read_json(self.job_path)
            return base64.b64decode(saved["desired"]) if saved else None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("update record %s is unreadable (%s); the fleet's retained desired state restarts it",
                      self.job_path, exc)  # fmt: skip
            return None

    def save_job(self, payload: bytes) -> None:
        write_json(self.job_path, {"v": 1, "desired": base64.b64encode(payload).decode()})

    def clear_job(self) -> None:
        self.job_path.unlink(missing_ok=True)

    def artifacts(self) -> dict[str, dict[str, str]]:
        """slot → {"sha256": artifact file digest, "digest": manifest digest}."""
        try:
            saved = read_json(self.artifacts_path)
        except (OSError, ValueError) as exc:
            log.warning("artifact index %s is unreadable (%s); slots are named by manifest digest", self.artifacts_path,
                        exc)  # fmt: skip
            return {}
        return saved if isinstance(saved, dict) else {}

    def record_slot(self, slot: str, sha256: str, digest: str) -> None:
        write_json(self.artifacts_path, {**self.artifacts(), slot: {"sha256": sha256, "digest": digest}})

    def artifact_sha256(self, slot: str | None, digest: str | None) -> str | None:
        """The fleet's digest of the artifact in `slot`, if this agent installed it (and it is still there)."""
        entry = self.artifacts().get(slot) if slot else None
        if isinstance(entry, dict) and entry.get("digest") == digest:
            return entry.get("sha256")
        return None

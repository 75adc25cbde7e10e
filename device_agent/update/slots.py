"""Two model slots, `state_dir/slots/{a,b}`: a new artifact is copied into the inactive one, atomically.

`stage` empties the slot, checks the source is still the artifact that was verified, copies every file its
manifest lists into a hidden temporary folder beside the slots, fsyncs it, re-verifies the copy against the
pinned key, and only then renames it into place. A slot folder therefore only ever holds a complete, verified
artifact; whether the agent *trusts* it is decided by the persisted state alone. `tidy` removes what the
state does not vouch for (leftover temporary folders, a slot whose record was cleared), which is how a
rollback wipes its candidate. The active slot is never written: the installer only stages into the inactive
one.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.artifact import MANIFEST_NAME, open_artifact, read_manifest, verify
from edgeml.atomic_files import fsync_dir
from edgeml.device_agent.update.agent_state import SLOT_NAMES, manifest_digest
from edgeml.errors import VerificationError

__all__ = ["Slots"]

log = logging.getLogger(__name__)

_PARTIAL = ".partial-"
_CHUNK = 1 << 20


class Slots:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.root = Path(state_dir) / "slots"

    def path(self, slot: str) -> Path:
        if slot not in SLOT_NAMES:
            raise ValueError(f"unknown slot {slot!r}; slots are {SLOT_NAMES}")
        return self.root / slot

    def scratch(self) -> Path:
        """Where a .tar is unpacked to be checked: beside the slots, on the state disk (a leftover after a
        power cut is removed by `tidy`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def stage(self, slot: str, source: str | os.PathLike[str], digest: str, key: Ed25519PublicKey) -> dict[str, Any]:
        """Copy the artifact at `source` into `slot`; it must be the one verified (manifest digest `digest`), and
        the copy must verify against `key`. Returns its manifest.

        Raises OSError (ENOSPC on a full disk) or VerificationError; either way nothing is left behind.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # NOTE: the old content goes first so a small disk needs room for two models, not three; the
        # caller has already persisted that this slot holds nothing trusted.
        self._remove(slot)
        tmp = Path(tempfile.mkdtemp(prefix=f".{slot}{_PARTIAL}", dir=self.root))
        try:
            os.chmod(tmp, 0o755)  # the host application may read the model as another user
            with open_artifact(source, scratch=self.root) as src:
                manifest = read_manifest(src)
                if manifest_digest(manifest) != digest:
                    raise _changed(source)
                _copy_listed(src, tmp, manifest)
            if verify(tmp, key).manifest != manifest:
                raise _changed(source)
            os.rename(tmp, self.path(slot))
            fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return manifest

    def _remove(self, slot: str) -> None:
        if self.path(slot).exists():
            shutil.rmtree(self.path(slot))
            fsync_dir(self.root)

    def tidy(self, keep: Collection[str]) -> None:
        """Remove temporary folders and every slot not in `keep` (the slots the persisted state vouches for)."""
        if not self.root.is_dir():
            return
        for entry in sorted(self.root.iterdir()):
            if entry.name in keep:
                continue
            log.info("removing %s: no committed or candidate model is recorded there", entry)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        fsync_dir(self.root)


def _copy_listed(src: Path, dst: Path, manifest: dict[str, Any]) -> None:
    folders = {dst}
    for rel in [entry["path"] for entry in manifest["files"]] + [MANIFEST_NAME]:
        _copy_synced(src / rel, dst / rel)
        folders.add((dst / rel).parent)
    for folder in sorted(folders, reverse=True):
        fsync_dir(folder)


def _copy_synced(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, _CHUNK)
        fout.flush()
        os.fsync(fout.fileno())


def _changed(source: str | os.PathLike[str]) -> VerificationError:
    return VerificationError(
        "changed_during_install",
        f"the artifact at {source} changed between verification and the copy into the slot",
        "do not modify an artifact while it is being installed; send the update again",
    )

"""Files + manifest + key → a signed artifact folder, written atomically.

Everything is written into a temporary sibling folder, fsynced, and renamed into place at the end, so a
full disk or a crash leaves either the old output or the complete new one, never half an artifact.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeml.artifact.manifest import MANIFEST_NAME, check_manifest
from edgeml.artifact.signing import sign_manifest
from edgeml.errors import ArtifactError, OutputExistsError, VerificationError

__all__ = ["check_output_free", "file_entry", "write_artifact"]

_NAMED = 5  # foreign files named in a refusal before "and N more"


def check_output_free(out: str | os.PathLike[str], force: bool) -> None:
    """Refuse an output that would lose something: the current folder or one above it (always), an existing
    path without `force`, and even with `force` anything but an empty folder or an edgeml artifact (a folder
    holding a manifest and only the files it lists)."""
    out = Path(out)
    _refuse_working_folder(out)
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise OutputExistsError(f"output {out} already exists", "choose another --out, or pass --force to replace it")
    if not out.is_dir() or out.is_symlink():
        raise OutputExistsError(
            f"--force replaces an artifact folder, and {out} is a file", "choose another --out: nothing was deleted"
        )
    foreign = _foreign_entries(out)
    if foreign:
        listed = ", ".join(foreign[:_NAMED]) + (f" and {len(foreign) - _NAMED} more" if len(foreign) > _NAMED else "")
        raise OutputExistsError(
            f"--force replaces an edgeml artifact, and {out} holds what is not part of one: {listed}",
            "move those files away, or choose another --out: nothing was deleted",
        )


def _refuse_working_folder(out: Path) -> None:
    resolved, cwd = out.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        where = "the current folder" if resolved == cwd else "a folder above the current one"
        raise OutputExistsError(
            f"--out {out} is {where}: an artifact replaces its output folder as a whole",
            "choose a new subfolder, e.g. --out build/NAME",
        )


def _foreign_entries(folder: Path) -> list[str]:
    """Paths under `folder` (relative, sorted) that its manifest does not list: all of them without one."""
    listed = _listed_files(folder / MANIFEST_NAME)
    allowed = listed | {MANIFEST_NAME} if listed is not None else set()
    allowed |= {str(parent) for p in allowed for parent in PurePosixPath(p).parents if str(parent) != "."}
    entries = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    return [e for e in entries if e not in allowed]


def _listed_files(manifest_path: Path) -> set[str] | None:
    """The file paths an edgeml manifest lists, or None where there is no readable manifest."""
    try:
        manifest = json.loads(manifest_path.read_text())
        check_manifest(manifest)
    except (OSError, ValueError, VerificationError):
        return None
    return {entry["path"] for entry in manifest["files"]}


def file_entry(path: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def write_artifact(
    out: str | os.PathLike[str],
    files: Mapping[str, bytes],
    manifest: dict[str, Any],
    key: Ed25519PrivateKey,
    force: bool = False,
) -> dict[str, Any]:
    """Write `files` and the signed manifest to `out`; return the signed manifest."""
    out = Path(out)
    check_output_free(out, force)
    manifest = {**manifest, "files": [file_entry(p, files[p]) for p in sorted(files)]}
    check_manifest(manifest)
    signed = sign_manifest(manifest, key)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)
        for rel, data in files.items():
            _write_synced(tmp / rel, data)
        _write_synced(tmp / MANIFEST_NAME, json.dumps(signed, indent=2, sort_keys=True).encode() + b"\n")
        _swap_into_place(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(out, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return signed


def _write_synced(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _swap_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.rename(tmp, out)
        return
    old = out.with_name(f".{out.name}.replaced")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()


def _write_error(out: Path, exc: OSError) -> ArtifactError:
    if exc.errno == errno.ENOSPC:
        return ArtifactError(
            f"the disk filled up while writing the artifact to {out}; nothing was written there",
            "free some space (or choose another --out on a disk with room) and run the compile again",
        )
    return ArtifactError(f"cannot write the artifact to {out}: {exc.strerror or exc}", "check the folder's permissions")

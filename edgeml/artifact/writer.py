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
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeml.artifact.manifest import MANIFEST_NAME, check_manifest
from edgeml.artifact.signing import sign_manifest
from edgeml.errors import ArtifactError, OutputExistsError

__all__ = ["check_output_free", "file_entry", "write_artifact"]


def check_output_free(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise OutputExistsError(f"output {out} already exists", "choose another --out, or pass --force to replace it")


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

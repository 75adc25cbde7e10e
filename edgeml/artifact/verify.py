"""Artifact folder or .tar + pinned public key → verified manifest, or a VerificationError naming the check.

Checks, in order: the manifest parses and has the v1 shape; it is signed by the pinned key and unchanged;
every listed file is present with its size and sha256; no file is there that the manifest does not list.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.artifact.keys import load_public_key
from edgeml.artifact.manifest import MANIFEST_NAME, check_manifest
from edgeml.artifact.signing import verify_manifest_signature
from edgeml.errors import VerificationError

__all__ = ["VerifiedArtifact", "open_artifact", "read_manifest", "verify", "verify_files"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class VerifiedArtifact:
    path: Path
    manifest: dict[str, Any]
    key_id: str


@contextlib.contextmanager
def open_artifact(path: str | os.PathLike[str], scratch: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Yield the artifact's folder; a .tar is unpacked (safely) into a temporary folder first — under
    `scratch` when given (a device unpacks on its state disk, not into a small RAM-backed /tmp)."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    if not path.exists():
        raise VerificationError("not_found", f"{path} does not exist", "pass an artifact folder or .tar")
    if not tarfile.is_tarfile(path):
        raise VerificationError("malformed", f"{path} is neither an artifact folder nor a .tar of one")
    with tempfile.TemporaryDirectory(prefix=".edgeml-artifact-", dir=scratch) as tmp:
        try:
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise VerificationError("malformed", f"cannot unpack {path}: {exc}") from exc
        yield Path(tmp)


def read_manifest(root: Path) -> dict[str, Any]:
    """Parse and structurally check `root/manifest.json` (no signature check)."""
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_bytes())
    except FileNotFoundError:
        raise VerificationError("malformed", f"{root} has no {MANIFEST_NAME}: not an edgeml artifact") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VerificationError("malformed", f"{MANIFEST_NAME} is not valid JSON: {exc}") from None
    check_manifest(manifest)
    return manifest


def verify(
    path: str | os.PathLike[str],
    public_key: Ed25519PublicKey | str | os.PathLike[str],
    scratch: str | os.PathLike[str] | None = None,
) -> VerifiedArtifact:
    """Run every check on the artifact at `path`; raise VerificationError at the first that fails. A .tar is
    unpacked under `scratch` (default: the system's temporary folder)."""
    key = public_key if isinstance(public_key, Ed25519PublicKey) else load_public_key(public_key)
    with open_artifact(path, scratch) as root:
        manifest = read_manifest(root)
        kid = verify_manifest_signature(manifest, key)
        verify_files(root, manifest)
    return VerifiedArtifact(Path(path), manifest, kid)


def verify_files(root: Path, manifest: dict[str, Any]) -> None:
    listed = {entry["path"] for entry in manifest["files"]}
    for entry in manifest["files"]:
        _check_file(root / entry["path"], entry)
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}
    extra = sorted(present - listed - {MANIFEST_NAME})
    if extra:
        raise VerificationError(
            "extra_file",
            f"the artifact holds files its manifest does not list: {', '.join(extra)}",
            "something was added after signing; remove them or rebuild the artifact",
        )


def _check_file(path: Path, entry: dict[str, Any]) -> None:
    if not path.is_file():
        raise VerificationError("missing_file", f"file {entry['path']} listed in the manifest is missing")
    size = path.stat().st_size
    if size != entry["size"]:
        raise VerificationError(
            "size_mismatch", f"file {entry['path']} is {size} bytes, the manifest says {entry['size']}"
        )
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    if digest.hexdigest() != entry["sha256"]:
        raise VerificationError(
            "hash_mismatch",
            f"file {entry['path']} does not match its sha256 in the manifest: it was changed after signing",
            "do not use this artifact; rebuild it or fetch it again",
        )

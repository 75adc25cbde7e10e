"""The manifest schema (version 1): what an artifact holds, and the structural check every reader runs.

A manifest is plain JSON so any language can read it. `check_manifest` is the one structural check:
the signer, `edgeml verify`, the fleet and the device agent all run it before trusting a field.
"""

from __future__ import annotations

import re
from typing import Any

from edgeml.errors import VerificationError

__all__ = ["MANIFEST_NAME", "SCHEMA_VERSION", "check_manifest", "release_from_version"]

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]+)?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "schema_version": int,
    "name": str,
    "version": str,
    "release": int,
    "target": dict,
    "files": list,
    "io": dict,
    "metrics": dict,
    "decision": dict,
    "reference_profile": dict,
    "provenance": dict,
}


def release_from_version(version: str) -> int:
    """MAJOR.MINOR.PATCH → MAJOR·10⁶ + MINOR·10³ + PATCH: a release number that grows with the version."""
    m = _SEMVER.match(version)
    if not m:
        raise ValueError(f"version {version!r} is not MAJOR.MINOR.PATCH (e.g. 1.2.0)")
    major, minor, patch = (int(g) for g in m.groups())
    if minor >= 1000 or patch >= 1000:
        raise ValueError(f"version {version!r}: minor and patch must be below 1000 (or pass --release)")
    return major * 1_000_000 + minor * 1_000 + patch


def check_manifest(manifest: Any) -> None:
    """Raise VerificationError('malformed' | 'schema_version') unless `manifest` has the v1 shape."""
    if not isinstance(manifest, dict):
        raise VerificationError("malformed", "manifest.json is not a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise VerificationError(
            "schema_version",
            f"manifest schema_version {version!r} is not supported (this edgeml reads {SCHEMA_VERSION})",
            "upgrade edgeml, or recompile the artifact with this version",
        )
    for field, kind in _FIELDS.items():
        if not isinstance(manifest.get(field), kind):
            raise VerificationError("malformed", f"manifest field {field!r} is missing or not a {kind.__name__}")
    if not _SEMVER.match(manifest["version"]):
        raise VerificationError("malformed", f"manifest version {manifest['version']!r} is not semantic")
    if not isinstance(manifest["target"].get("id"), str):
        raise VerificationError("malformed", "manifest target.id is missing")
    for entry in manifest["files"]:
        _check_file_entry(entry)


def _check_file_entry(entry: Any) -> None:
    if not isinstance(entry, dict):
        raise VerificationError("malformed", f"manifest files entry {entry!r} is not an object")
    path = entry.get("path")
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
        raise VerificationError("malformed", f"manifest file path {path!r} is not a plain relative path")
    if path == MANIFEST_NAME:
        raise VerificationError("malformed", "manifest lists itself as a model file")
    if not isinstance(entry.get("sha256"), str) or not _SHA256.match(entry["sha256"]):
        raise VerificationError("malformed", f"manifest file {path!r} has no valid sha256")
    if not isinstance(entry.get("size"), int) or entry["size"] < 0:
        raise VerificationError("malformed", f"manifest file {path!r} has no valid size")

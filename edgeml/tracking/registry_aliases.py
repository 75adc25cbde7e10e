"""Signed artifacts as MLflow model versions, and the fleet's state as registry aliases.

A model version is found by the digest of the artifact's signed manifest (tag `edgeml.manifest_sha256`), never by
its number, so logging the same artifact twice, or mirroring one that was compiled without tracking, registers it
once, and two different builds that share a name@version (a retrained model that was not published, then another
that was) stay two versions. Aliases say what
the fleet runs: `production` the artifact of the newest completed rollout, `canary` the one a running
rollout is exposing (removed when none is), `rolled_back` the one of the newest aborted rollout.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["FLEET_ALIASES", "aliases", "find_version", "manifest_digest", "register_artifact", "set_alias"]

FLEET_ALIASES = ("canary", "production", "rolled_back")


def register_artifact(client: Any, manifest: dict[str, Any], source: str, run_id: str | None = None) -> str:
    """The model version of `manifest`'s artifact (name = artifact name), registered on first sight."""
    name = manifest["name"]
    found = find_version(client, name, manifest_digest(manifest))
    if found is not None:
        return found
    _ensure_model(client, name)
    tags = {
        "edgeml.manifest_sha256": manifest_digest(manifest),
        "edgeml.version": manifest["version"],
        "edgeml.release": str(manifest["release"]),
        "edgeml.target": manifest["target"]["id"],
        "edgeml.key_id": manifest["signature"]["key_id"],
    }
    description = f"signed edgeml artifact {name}@{manifest['version']} for {manifest['target']['id']}"
    mv = client.create_model_version(name, source, run_id=run_id, tags=tags, description=description)
    return str(mv.version)


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the signed manifest (signature included), the same from the artifact folder and the fleet."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def find_version(client: Any, name: str, digest: str) -> str | None:
    """The registered version number of the artifact whose manifest has `digest`, or None."""
    try:
        versions = client.search_model_versions(f"name='{_quote(name)}'")
    except Exception as exc:
        if _is(exc, _MISSING):  # no such registered model yet
            return None
        raise
    for mv in versions:
        if mv.tags.get("edgeml.manifest_sha256") == digest:
            return str(mv.version)
    return None


def set_alias(client: Any, name: str, alias: str, version: str | None) -> None:
    """Point `alias` of model `name` at `version`; None removes it (if it was set)."""
    if version is not None:
        client.set_registered_model_alias(name, alias, version)
        return
    try:
        client.delete_registered_model_alias(name, alias)
    except Exception as exc:
        if not _is(exc, _MISSING):  # it was not set: nothing to remove
            raise


def aliases(client: Any, name: str) -> dict[str, str]:
    """alias → version number of model `name` (empty if it is not registered)."""
    try:
        return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}
    except Exception as exc:
        if _is(exc, _MISSING):
            return {}
        raise


def _ensure_model(client: Any, name: str) -> None:
    try:
        client.get_registered_model(name)
    except Exception as exc:
        if not _is(exc, _MISSING):
            raise
        try:
            client.create_registered_model(name, tags={"edgeml.kind": "signed artifact"})
        except Exception as exc2:
            if not _is(exc2, _EXISTS):  # created by another process meanwhile
                raise


# NOTE: MLflow's errors (MlflowException, RestException) carry a protobuf error code; only these two are expected
_MISSING, _EXISTS = "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS"


def _is(exc: Exception, code: str) -> bool:
    return getattr(exc, "error_code", None) == code


def _quote(text: str) -> str:
    return text.replace("'", "\\'")

"""An artifact (folder or .tar) → its manifest and `explain.json`, the latter checked against the manifest's
sha256 for it (a tampered or truncated report is refused; the signature is `edgeml verify`'s business)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from edgeml.artifact.verify import open_artifact, read_manifest
from edgeml.compiler.explain_report import EXPLAIN_FILE
from edgeml.errors import ArtifactError

__all__ = ["read_explain"]


def read_explain(artifact: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    with open_artifact(artifact) as root:
        manifest = read_manifest(root)
        name = manifest.get("explain", {}).get("file", EXPLAIN_FILE)
        entry = next((f for f in manifest.get("files", []) if f.get("path") == name), None)
        if entry is None or not (root / name).is_file():
            raise ArtifactError(
                f"{artifact} holds no {name}: it was compiled by an edgeml without `explain`",
                "compile it again (with the same --recipe manifest.json) to get the report",
            )
        data = (root / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ArtifactError(
            f"{name} in {artifact} does not match its sha256 in the manifest", "run `edgeml verify` on it"
        )
    return manifest, json.loads(data)

"""Signed artifact folder or .tar → verified, packed deterministically, stored by content (sha256 of the tar).

The fleet only ever distributes what verifies against its public key; the digest is what devices fetch
and what rollouts name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.artifact import pack, verify
from edgeml.errors import VerificationError
from edgeml.fleet.database import Database, FleetConflictError, FleetError, FleetNotFoundError

__all__ = ["ArtifactStore"]


class ArtifactStore:
    def __init__(self, db: Database, root: str | os.PathLike[str], public_key: Ed25519PublicKey) -> None:
        self.db, self.root, self._key = db, Path(root), public_key
        self.root.mkdir(parents=True, exist_ok=True)

    def publish(self, artifact: str | os.PathLike[str], now: float) -> dict[str, Any]:
        """Verify, pack and store `artifact`; publishing the same bytes twice is a no-op."""
        try:
            manifest = verify(artifact, self._key).manifest
        except VerificationError as exc:
            hint = exc.hint or f"check it with `edgeml verify {artifact}` against the fleet's public key"
            raise FleetError(f"refusing to publish {artifact}: {exc.message}", hint) from exc
        tar = self._pack(Path(artifact))
        sha = hashlib.sha256(tar.read_bytes()).hexdigest()
        final = self.path(sha)
        os.replace(tar, final) if not final.exists() else tar.unlink()
        self._register(sha, final.stat().st_size, manifest, now)
        return self.get(sha)

    def _pack(self, artifact: Path) -> Path:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-", suffix=".tar")
        os.close(fd)
        if artifact.is_dir():
            return pack(artifact, tmp)
        shutil.copyfile(artifact, tmp)
        return Path(tmp)

    def _register(self, sha: str, size: int, manifest: dict[str, Any], now: float) -> None:
        key = (manifest["name"], manifest["version"], manifest["target"]["id"])
        with self.db.transaction() as tx:
            clash = tx.execute("SELECT sha256 FROM artifacts WHERE name=? AND version=? AND target=?", key).fetchone()
            if clash and clash[0] != sha:
                raise FleetConflictError(
                    f"{key[0]}@{key[1]} for {key[2]} is already published with other content",
                    "give the new build a new --version",
                )
            tx.execute(
                "INSERT INTO artifacts VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (sha, key[0], key[1], manifest["release"], key[2], size, json.dumps(manifest), now),
            )

    def path(self, sha: str) -> Path:
        return self.root / f"{sha}.tar"

    def get(self, sha: str) -> dict[str, Any]:
        rows = self.db.query("SELECT * FROM artifacts WHERE sha256=?", (sha,))
        if not rows:
            raise FleetNotFoundError(f"no published artifact {sha[:12]}…", "publish it with `edgeml fleet publish`")
        return _artifact(rows[0])

    def find(self, spec: str) -> list[dict[str, Any]]:
        """`name@version` (all targets) or a sha256 (prefix ≥ 8)."""
        if "@" in spec:
            name, version = spec.split("@", 1)
            rows = self.db.query("SELECT * FROM artifacts WHERE name=? AND version=?", (name, version))
        else:
            rows = self.db.query("SELECT * FROM artifacts WHERE sha256 LIKE ?", (spec + "%",)) if len(spec) >= 8 else []
        if not rows:
            raise FleetError(f"no published artifact matches {spec!r}", "see `edgeml fleet artifacts`")
        return [_artifact(r) for r in rows]

    def all(self) -> list[dict[str, Any]]:
        return [_artifact(r) for r in self.db.query("SELECT * FROM artifacts ORDER BY name, release")]


def _artifact(row) -> dict[str, Any]:
    d = dict(row)
    d["manifest"] = json.loads(d["manifest"])
    return d

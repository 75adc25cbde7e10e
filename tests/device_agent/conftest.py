"""Fixtures for the device agent's install tests: a newer compiled release, re-signed variants of an artifact,
an installer factory that records events, and a check that the serving model verifies and loads."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeml.artifact import load_private_key, load_public_key, verify
from edgeml.artifact.signing import sign_manifest
from edgeml.device_agent.update.installer import Installer
from edgeml.runtimes import open_session

ROOT = Path(__file__).resolve().parents[2]
DEVICE_TARGET = "cpu-ort"


@pytest.fixture(scope="session")
def newer_artifact(tmp_path_factory, keypair):
    """The digits model compiled again as version 1.3.0 (release 1003000), signed with the same key."""
    import edgeml

    out = tmp_path_factory.mktemp("artifacts-newer") / "digits-1.3.0"
    cache = tmp_path_factory.mktemp("newer-cache")
    model = ROOT / "examples" / "digits" / "model.onnx"
    edgeml.compile(str(model), "cpu-ort", key=keypair[0], out=out, cache_dir=cache, version="1.3.0")
    return out


@pytest.fixture
def resign(tmp_path, keypair) -> Callable[..., Path]:
    """Copy an artifact, replace some files and/or edit its manifest, and sign it again (validly, by default key)."""
    counter = iter(range(1000))

    def make(
        src: Path,
        files: dict[str, bytes] | None = None,
        edit: Callable[[dict[str, Any]], None] | None = None,
        key_path: Path | None = None,
    ) -> Path:
        dst = tmp_path / f"resigned-{next(counter)}"
        shutil.copytree(src, dst)
        for rel, data in (files or {}).items():
            (dst / rel).write_bytes(data)
        manifest = json.loads((dst / "manifest.json").read_text())
        manifest["files"] = [_entry(dst, e["path"]) for e in manifest["files"]]
        if edit is not None:
            edit(manifest)
        signed = sign_manifest(manifest, load_private_key(key_path or keypair[0]))
        (dst / "manifest.json").write_text(json.dumps(signed, indent=2, sort_keys=True))
        return dst

    return make


def _entry(root: Path, rel: str) -> dict[str, Any]:
    data = (root / rel).read_bytes()
    return {"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


@pytest.fixture
def make_installer(keypair) -> Callable[..., Installer]:
    """Installer(state_dir) for a cpu-ort device with ONNX Runtime; its events land in `.recorder`."""

    def make(state_dir: Path, **kwargs: Any) -> Installer:
        recorder = Recorder()
        kwargs.setdefault("runtimes", ["onnxruntime"])
        installer = Installer(state_dir, keypair[1], DEVICE_TARGET, on_event=recorder, **kwargs)
        installer.recorder = recorder  # type: ignore[attr-defined]
        return installer

    return make


@pytest.fixture
def assert_serving(keypair) -> Callable[[Installer, str], None]:
    """Check that the active slot holds `version`, verifies against the pinned key, loads and runs."""

    def check(installer: Installer, version: str) -> None:
        active = installer.active_model()
        assert active is not None, "no model is active"
        assert active.manifest["version"] == version
        folder = active.model_path.parent
        assert verify(folder, load_public_key(keypair[1])).manifest == active.manifest
        session = open_session(active.manifest["target"]["runtime"], active.model_path)
        with np.load(folder / active.manifest["self_test"]["file"]) as z:
            feeds = {k.removeprefix("input/"): z[k] for k in z.files if k.startswith("input/")}
        assert session.run(feeds)

    return check

"""Tampered artifacts are refused before they touch a slot, and the running model keeps serving."""

from __future__ import annotations

import json
import shutil

import pytest

from edgeml.artifact import create_keypair
from edgeml.device_agent.update.lifecycle import State


def _flip_model_byte(folder):
    path = folder / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _add_file(folder):
    (folder / "payload.sh").write_text("#!/bin/sh\necho owned\n")


def _edit_manifest(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["target"]["id"] = "cpu-ort-but-edited"
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _strip_signature(folder):
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["signature"]
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (_flip_model_byte, "hash_mismatch"),
        (_add_file, "extra_file"),
        (_edit_manifest, "bad_signature"),
        (_strip_signature, "unsigned"),
    ],
)
def test_tampered_artifact_is_refused(
    tmp_path, make_installer, digits_artifact, newer_artifact, assert_serving, tamper, code
):
    installer = make_installer(tmp_path / "agent")
    assert installer.install(digits_artifact).ok
    before = installer.state().slots
    bad = tmp_path / "bad"
    shutil.copytree(newer_artifact, bad)
    tamper(bad)
    result = installer.install(bad)
    assert (result.outcome, result.code) == (State.REFUSED, code), result.describe()
    assert installer.state().slots == before and installer.state().active == "a"
    assert not (tmp_path / "agent" / "slots" / "b").exists()
    assert_serving(installer, "1.2.3")


def test_artifact_signed_by_another_key_is_refused(tmp_path, make_installer, digits_artifact, newer_artifact, resign):
    installer = make_installer(tmp_path / "agent")
    assert installer.install(digits_artifact).ok
    other_private, _ = create_keypair(tmp_path / "other-keys")
    result = installer.install(resign(newer_artifact, key_path=other_private))
    assert result.code == "wrong_key" and "not by the pinned key" in result.reason, result.describe()
    assert installer.active_model().manifest["version"] == "1.2.3"

"""Every verification check rejects what it should, with its own code and message."""

from __future__ import annotations

import json
import shutil
import stat

import pytest

from edgeml.artifact import create_keypair, pack, verify
from edgeml.artifact.keys import load_private_key
from edgeml.artifact.signing import sign_manifest
from edgeml.errors import SigningKeyError, VerificationError


@pytest.fixture
def artifact(tmp_path, digits_artifact):
    copy = tmp_path / "a"
    shutil.copytree(digits_artifact, copy)
    return copy


def _code(path, pub) -> str:
    with pytest.raises(VerificationError) as info:
        verify(path, pub)
    return info.value.code


def test_untouched_artifact_verifies(artifact, keypair):
    result = verify(artifact, keypair[1])
    assert result.manifest["name"] == "digits" and result.manifest["release"] == 1_002_003
    assert {f["path"] for f in result.manifest["files"]} == {"model.onnx", "self_test.npz", "explain.json"}


def test_a_changed_byte_is_caught(artifact, keypair):
    model = artifact / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    assert _code(artifact, keypair[1]) == "hash_mismatch"


def test_a_truncated_file_is_caught(artifact, keypair):
    model = artifact / "model.onnx"
    model.write_bytes(model.read_bytes()[:-10])
    assert _code(artifact, keypair[1]) == "size_mismatch"


def test_a_missing_file_is_caught(artifact, keypair):
    (artifact / "self_test.npz").unlink()
    assert _code(artifact, keypair[1]) == "missing_file"


def test_an_extra_file_is_caught(artifact, keypair):
    (artifact / "payload.sh").write_text("echo hi")
    with pytest.raises(VerificationError, match=r"payload\.sh") as info:
        verify(artifact, keypair[1])
    assert info.value.code == "extra_file"


def test_another_key_is_refused(artifact, tmp_path):
    _, other_pub = create_keypair(tmp_path / "other")
    with pytest.raises(VerificationError, match="signed by key") as info:
        verify(artifact, other_pub)
    assert info.value.code == "wrong_key"


def test_an_edited_manifest_breaks_the_signature(artifact, keypair):
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["metrics"]["accuracy"] = 100.0
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    assert _code(artifact, keypair[1]) == "bad_signature"


def test_a_resigned_manifest_with_a_foreign_key_is_refused(artifact, keypair, tmp_path):
    forged_priv, _ = create_keypair(tmp_path / "forger")
    manifest = json.loads((artifact / "manifest.json").read_text())
    forged = sign_manifest(manifest | {"version": "9.9.9"}, load_private_key(forged_priv))
    (artifact / "manifest.json").write_text(json.dumps(forged))
    assert _code(artifact, keypair[1]) == "wrong_key"


def test_an_unsigned_manifest_is_refused(artifact, keypair):
    manifest = json.loads((artifact / "manifest.json").read_text())
    del manifest["signature"]
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    assert _code(artifact, keypair[1]) == "unsigned"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("{not json", "malformed"),
        ("[]", "malformed"),
        (json.dumps({"schema_version": 99}), "schema_version"),
        (json.dumps({"schema_version": 1, "name": "x"}), "malformed"),
    ],
)
def test_a_malformed_manifest_is_refused(artifact, keypair, content, code):
    (artifact / "manifest.json").write_text(content)
    assert _code(artifact, keypair[1]) == code


def test_a_path_escaping_the_artifact_is_refused(artifact, keypair):
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["files"][0]["path"] = "../../etc/passwd"
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    assert _code(artifact, keypair[1]) == "malformed"


def test_not_an_artifact(tmp_path, keypair):
    (tmp_path / "empty").mkdir()
    assert _code(tmp_path / "empty", keypair[1]) == "malformed"
    assert _code(tmp_path / "nothing-here", keypair[1]) == "not_found"


def test_tar_round_trip_is_deterministic_and_verifies(artifact, keypair, tmp_path):
    first, second = pack(artifact, tmp_path / "a.tar"), pack(artifact, tmp_path / "b.tar")
    assert first.read_bytes() == second.read_bytes()
    assert verify(first, keypair[1]).manifest["name"] == "digits"


def test_keys_are_private_and_not_overwritten(tmp_path):
    private, public = create_keypair(tmp_path / "k")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(SigningKeyError, match="already exists"):
        create_keypair(tmp_path / "k")


def test_a_private_key_given_as_public_key_says_so(artifact, keypair):
    with pytest.raises(SigningKeyError, match="not a PEM public key"):
        verify(artifact, keypair[0])

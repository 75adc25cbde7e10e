"""Writing is atomic: a failure at any point leaves no partial artifact behind."""

from __future__ import annotations

import errno

import pytest

from edgeml.artifact import verify, write_artifact
from edgeml.artifact.keys import load_private_key
from edgeml.errors import ArtifactError, OutputExistsError

MANIFEST = {
    "schema_version": 1, "name": "m", "version": "1.0.0", "release": 1_000_000, "target": {"id": "cpu-ort"},
    "io": {}, "metrics": {}, "decision": {}, "reference_profile": {}, "provenance": {},
}  # fmt: skip


def test_written_artifact_verifies(tmp_path, keypair):
    write_artifact(tmp_path / "out", {"model.onnx": b"abc"}, MANIFEST, load_private_key(keypair[0]))
    assert verify(tmp_path / "out", keypair[1]).manifest["files"][0]["size"] == 3


def test_existing_output_needs_force(tmp_path, keypair):
    key = load_private_key(keypair[0])
    write_artifact(tmp_path / "out", {"model.onnx": b"v1"}, MANIFEST, key)
    with pytest.raises(OutputExistsError, match="--force"):
        write_artifact(tmp_path / "out", {"model.onnx": b"v2"}, MANIFEST, key)
    write_artifact(tmp_path / "out", {"model.onnx": b"v2"}, MANIFEST, key, force=True)
    assert (tmp_path / "out" / "model.onnx").read_bytes() == b"v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_full_disk_leaves_nothing_half_written(tmp_path, keypair, monkeypatch):
    import edgeml.artifact.writer as writer

    real = writer._write_synced
    calls = []

    def fill_up(path, data):
        calls.append(path)
        if len(calls) == 2:  # the first file landed; the disk fills on the second
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(writer, "_write_synced", fill_up)
    with pytest.raises(ArtifactError, match="disk filled up"):
        write_artifact(tmp_path / "out", {"a.onnx": b"1", "b.bin": b"2"}, MANIFEST, load_private_key(keypair[0]))
    assert list(tmp_path.iterdir()) == []


def test_full_disk_on_replace_keeps_the_old_artifact(tmp_path, keypair, monkeypatch):
    import edgeml.artifact.writer as writer

    key = load_private_key(keypair[0])
    write_artifact(tmp_path / "out", {"model.onnx": b"old"}, MANIFEST, key)
    monkeypatch.setattr(writer, "_write_synced", lambda p, d: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(ArtifactError):
        write_artifact(tmp_path / "out", {"model.onnx": b"new"}, MANIFEST, key, force=True)
    assert (tmp_path / "out" / "model.onnx").read_bytes() == b"old"
    assert verify(tmp_path / "out", keypair[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_replaces_only_an_artifact_or_an_empty_folder(tmp_path, keypair):
    """--force must never delete a user's file: a folder holding anything its manifest does not list is refused
    with the files named, and left as it was."""
    key = load_private_key(keypair[0])
    (tmp_path / "empty").mkdir()
    write_artifact(tmp_path / "empty", {"model.onnx": b"v1"}, MANIFEST, key, force=True)
    (tmp_path / "empty" / "my-notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"my-notes\.txt") as refused:
        write_artifact(tmp_path / "empty", {"model.onnx": b"v2"}, MANIFEST, key, force=True)
    assert "nothing was deleted" in refused.value.hint
    assert (tmp_path / "empty" / "my-notes.txt").read_text() == "mine"
    assert (tmp_path / "empty" / "model.onnx").read_bytes() == b"v1"
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        write_artifact(tmp_path / "file", {"model.onnx": b"v2"}, MANIFEST, key, force=True)


def test_the_current_folder_is_never_an_output(tmp_path, keypair, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for out in (".", "..", tmp_path):
        with pytest.raises(OutputExistsError, match="current"):
            write_artifact(out, {"model.onnx": b"v"}, MANIFEST, load_private_key(keypair[0]), force=True)
    assert list(tmp_path.iterdir()) == []

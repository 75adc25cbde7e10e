"""One member's bytes out of a tar fed chunk by chunk: wherever it sits, whatever the header format, bounded."""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from edgeml.artifact import pack
from edgeml.fleet.tar_member_tap import TarMemberTap

MANIFEST = b'{"reference_profile": {"inputs": {}}}\n'


def tar_of(members: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def fed(raw: bytes, step: int, tap: TarMemberTap | None = None) -> TarMemberTap:
    tap = tap or TarMemberTap("manifest.json")
    for i in range(0, len(raw), step):
        tap.feed(raw[i : i + step])
    return tap


@pytest.mark.parametrize("step", [1, 100, 512, 16 * 1024])
def test_the_manifest_of_a_packed_artifact_at_any_chunk_size(digits_artifact, tmp_path, step):
    raw = pack(digits_artifact, tmp_path / "a.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        names = tar.getnames()
    assert names.index("manifest.json") > 0  # NOTE: explain.json sorts first: the manifest is not the first member
    tap = fed(raw, step)
    assert tap.data == (digits_artifact / "manifest.json").read_bytes()
    assert "reference_profile" in json.loads(tap.data)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("name", ["manifest.json", "./manifest.json"])
def test_long_names_empty_members_and_dot_slash(fmt, name):
    long = "layers/" + "é" * 80 + ".bin"  # PAX path record or GNU long-name block before its header
    raw = tar_of([(long, os.urandom(3000)), ("empty", b""), (name, MANIFEST), ("model.onnx", os.urandom(700))], fmt)
    assert fed(raw, 333).data == MANIFEST


def test_a_member_whose_name_only_ends_like_it_is_skipped():
    raw = tar_of([("sub/manifest.json", b"{}"), ("manifest.json", MANIFEST)])
    assert fed(raw, 64).data == MANIFEST


def test_missing_too_large_or_malformed_ends_the_tap_with_a_reason():
    missing = fed(tar_of([("model.onnx", b"x" * 100)]), 512)
    assert missing.data is None and missing.problem == "no manifest.json in the archive"
    large = fed(tar_of([("manifest.json", b"x" * 5000)]), 512, TarMemberTap("manifest.json", limit=4096))
    assert large.data is None and "5000 bytes, more than the 4096" in large.problem
    junk = fed(b"not a tar" * 200, 512)
    assert junk.data is None and junk.problem.startswith("malformed tar header")


def test_it_buffers_at_most_a_header_while_skipping_other_members():
    tap = TarMemberTap("manifest.json")
    raw = tar_of([("weights.bin", os.urandom(200_000)), ("manifest.json", MANIFEST)])
    for i in range(0, len(raw), 4096):
        tap.feed(raw[i : i + 4096])
        assert len(tap._buf) < 512 or i > 200_000
    assert tap.data == MANIFEST

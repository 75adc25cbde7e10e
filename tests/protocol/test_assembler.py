"""The Assembler: any order, duplicates and foreign chunks; resumes from disk; verifies before the atomic
rename; a full disk or a bad file leaves nothing at the destination."""

from __future__ import annotations

import errno
import hashlib
import os
import random

import pytest

from edgeml.errors import ArtifactError
from edgeml.protocol import Assembler, ChunkLayout, ProtocolError, encode_chunk, iter_chunks


@pytest.fixture
def layout(artifact_bytes) -> ChunkLayout:
    return ChunkLayout.of(artifact_bytes, 1024)


@pytest.fixture
def chunks(artifact_bytes, layout) -> list[bytes]:
    return list(iter_chunks(artifact_bytes, layout))


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_in_order_completes_and_renames_atomically(tmp_path, chunks, layout, artifact_bytes):
    dest = tmp_path / "model.tar"
    asm = Assembler(dest, layout)
    results = [asm.add(c) for c in chunks]
    assert results == ["stored"] * 10 + ["complete"]
    assert asm.complete and dest.read_bytes() == artifact_bytes
    assert _leftovers(tmp_path) == ["model.tar"]


def test_out_of_order_duplicates_and_foreign_chunks(tmp_path, chunks, layout, artifact_bytes):
    other = b"another artifact".ljust(3000, b"!")
    foreign = list(iter_chunks(other, ChunkLayout.of(other, 1024)))
    stream = chunks + chunks[2:5] + foreign
    random.Random(5).shuffle(stream)
    asm = Assembler(tmp_path / "m", layout)
    results = [asm.add(c) for c in stream]
    assert results.count("ignored") == len(foreign)
    assert results.count("duplicate") == 3 and results.count("complete") == 1
    assert (tmp_path / "m").read_bytes() == artifact_bytes


def test_missing_and_chunk_request(tmp_path, chunks, layout):
    asm = Assembler(tmp_path / "m", layout)
    for i in (0, 1, 5, 9):
        asm.add(chunks[i])
    assert asm.missing() == [2, 3, 4, 6, 7, 8, 10]
    req = asm.chunk_request()
    assert (req.artifact, req.chunk_size, req.missing) == (layout.sha256, 1024, ((2, 5), (6, 9), (10, 11)))


def test_resumes_after_a_restart(tmp_path, chunks, layout, artifact_bytes):
    asm = Assembler(tmp_path / "m", layout, checkpoint_every=1)
    for i in (7, 0, 3):
        asm.add(chunks[i])
    del asm
    again = Assembler(tmp_path / "m", layout)
    assert again.received == 3 and 7 not in again.missing()
    for i in again.missing():
        again.add(chunks[i])
    assert again.complete and (tmp_path / "m").read_bytes() == artifact_bytes


def test_progress_after_the_last_checkpoint_is_asked_for_again(tmp_path, chunks, layout):
    asm = Assembler(tmp_path / "m", layout, checkpoint_every=100)
    asm.add(chunks[0])
    asm.checkpoint()
    asm.add(chunks[1])  # written, but not yet fsynced and recorded: not trusted after a restart
    assert Assembler(tmp_path / "m", layout).missing() == list(range(1, 11))


def test_state_for_another_artifact_is_discarded(tmp_path, chunks, layout):
    asm = Assembler(tmp_path / "m", layout, checkpoint_every=1)
    asm.add(chunks[0])
    other = ChunkLayout(hashlib.sha256(b"x").hexdigest(), layout.size, 1024)
    assert Assembler(tmp_path / "m", other).received == 0
    assert Assembler(tmp_path / "m", layout).received == 0


def test_corrupt_state_file_restarts_cleanly(tmp_path, chunks, layout):
    asm = Assembler(tmp_path / "m", layout, checkpoint_every=1)
    asm.add(chunks[0])
    asm.state_path.write_bytes(b"{not json")
    assert Assembler(tmp_path / "m", layout).received == 0


def test_already_in_place_is_complete(tmp_path, chunks, layout, artifact_bytes):
    (tmp_path / "m").write_bytes(artifact_bytes)
    asm = Assembler(tmp_path / "m", layout)
    assert asm.complete and asm.missing() == [] and asm.add(chunks[0]) == "duplicate"


def test_damaged_chunk_is_rejected_and_not_stored(tmp_path, chunks, layout):
    asm = Assembler(tmp_path / "m", layout)
    damaged = bytearray(chunks[4])
    damaged[-1] ^= 0xFF
    with pytest.raises(ProtocolError) as err:
        asm.add(bytes(damaged))
    assert err.value.code == "bad_checksum" and 4 in asm.missing()


def test_same_digest_other_layout_is_refused(tmp_path, layout, artifact_bytes):
    asm = Assembler(tmp_path / "m", layout)
    odd = ChunkLayout(layout.sha256, layout.size, 2048)
    with pytest.raises(ProtocolError) as err:
        asm.add(encode_chunk(odd, 0, artifact_bytes[:2048]))
    assert err.value.code == "bad_layout"


def test_final_hash_mismatch_discards_and_never_renames(tmp_path, layout, artifact_bytes):
    wrong = bytes(reversed(artifact_bytes))  # same size, other content, each chunk self-consistent
    lying = list(iter_chunks(wrong, layout))
    asm = Assembler(tmp_path / "m", layout)
    for c in lying[:-1]:
        asm.add(c)
    with pytest.raises(ProtocolError, match="discarded") as err:
        asm.add(lying[-1])
    assert err.value.code == "hash_mismatch"
    assert _leftovers(tmp_path) == [] and asm.received == 0


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_at_preallocation_leaves_nothing(tmp_path, chunks, layout, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", _disk_full, raising=False)
    asm = Assembler(tmp_path / "m", layout)
    with pytest.raises(ArtifactError, match="disk is full") as err:
        asm.add(chunks[0])
    assert "free space" in str(err.value) and _leftovers(tmp_path) == []


def test_full_disk_mid_download_keeps_destination_untouched(tmp_path, chunks, layout, artifact_bytes, monkeypatch):
    asm = Assembler(tmp_path / "m", layout, checkpoint_every=1)
    asm.add(chunks[0])
    monkeypatch.setattr(os, "pwrite", _disk_full)
    with pytest.raises(ArtifactError, match="disk is full"):
        asm.add(chunks[1])
    assert not (tmp_path / "m").exists()
    monkeypatch.undo()
    resumed = Assembler(tmp_path / "m", layout)
    assert resumed.missing() == list(range(1, 11))
    for i in resumed.missing():
        resumed.add(chunks[i])
    assert (tmp_path / "m").read_bytes() == artifact_bytes


def test_failed_rename_is_retried_by_the_next_assembler(tmp_path, chunks, layout, artifact_bytes, monkeypatch):
    asm = Assembler(tmp_path / "m", layout)
    for c in chunks[:-1]:
        asm.add(c)
    real_replace = os.replace

    def fail_on_dest(src, dst):  # the rename into place fails (EIO); saving progress still works
        if os.fspath(dst) == os.fspath(tmp_path / "m"):
            raise OSError(errno.EIO, "I/O error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_dest)
    with pytest.raises(ArtifactError, match="move the verified artifact"):
        asm.add(chunks[-1])
    monkeypatch.undo()
    assert not (tmp_path / "m").exists()
    assert Assembler(tmp_path / "m", layout).complete
    assert _leftovers(tmp_path) == ["m"] and (tmp_path / "m").read_bytes() == artifact_bytes


def test_a_slow_download_is_checkpointed_every_few_seconds(tmp_path, chunks, layout):
    now = [0.0]
    asm = Assembler(tmp_path / "m", layout, checkpoint_every=64, checkpoint_s=2.0, clock=lambda: now[0])
    for chunk in chunks[:3]:  # 3 chunks over 5 s: far from 64, yet saved
        now[0] += 1.7
        asm.add(chunk)
    assert Assembler(tmp_path / "m", layout).missing() == list(range(2, layout.count)), "saved at 3.4 s, not at 5.1 s"

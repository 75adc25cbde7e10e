"""Chunk messages: exact header layout, round trips from bytes and files, and every corruption rejected."""

from __future__ import annotations

import hashlib
import struct

import pytest

from edgeml.protocol import (
    DEFAULT_CHUNK_SIZE,
    HEADER_SIZE,
    ChunkLayout,
    ProtocolError,
    check_chunk_size,
    decode,
    decode_chunk,
    decode_published,
    encode_chunk,
    iter_chunks,
    publish_size,
)
from edgeml.protocol.topics import artifact_chunks_topic


@pytest.fixture
def layout(artifact_bytes) -> ChunkLayout:
    return ChunkLayout.of(artifact_bytes, 1024)


def test_layout_of_bytes_and_file_agree(tmp_path, artifact_bytes, layout):
    path = tmp_path / "a.tar"
    path.write_bytes(artifact_bytes)
    assert ChunkLayout.of(path, 1024) == layout
    assert (layout.count, layout.span(10)) == (11, (10240, 4))


def test_header_is_the_documented_96_bytes(layout, artifact_bytes):
    msg = encode_chunk(layout, 10, artifact_bytes[10240:])
    assert HEADER_SIZE == 96 and len(msg) == 96 + 4
    magic, version, flags, hlen, digest, index, count, csize, size, length, chunk_digest = struct.unpack(
        ">4sBBH32sIIIQI32s", msg[:96]
    )
    assert (magic, version, flags, hlen) == (b"EMLC", 1, 0, 96)
    assert (digest.hex(), index, count, csize, size, length) == (layout.sha256, 10, 11, 1024, len(artifact_bytes), 4)
    assert chunk_digest == hashlib.sha256(b"tail").digest()


def test_stream_from_file_reassembles(tmp_path, artifact_bytes, layout):
    path = tmp_path / "a.tar"
    path.write_bytes(artifact_bytes)
    chunks = [decode_chunk(m) for m in iter_chunks(path, layout)]
    assert [c.index for c in chunks] == list(range(11))
    assert b"".join(c.payload for c in chunks) == artifact_bytes
    assert [decode_chunk(m).index for m in iter_chunks(artifact_bytes, layout, [9, 2])] == [9, 2]


def test_decode_by_kind_and_topic(layout, artifact_bytes):
    msg = encode_chunk(layout, 0, artifact_bytes[:1024])
    assert decode("chunk", msg).index == 0
    topic, chunk = decode_published(artifact_chunks_topic(layout.sha256), msg)
    assert topic.artifact == layout.sha256 and chunk.payload == artifact_bytes[:1024]
    with pytest.raises(ProtocolError) as err:
        decode_published(artifact_chunks_topic("0" * 64), msg)
    assert err.value.code == "topic_mismatch"


def _rejects(msg: bytes) -> str:
    with pytest.raises(ProtocolError) as err:
        decode_chunk(msg)
    return err.value.code


def test_flipped_payload_byte_is_caught(layout, artifact_bytes):
    msg = bytearray(encode_chunk(layout, 1, artifact_bytes[1024:2048]))
    msg[HEADER_SIZE + 100] ^= 0x01
    assert _rejects(bytes(msg)) == "bad_checksum"


@pytest.mark.parametrize(
    ("offset", "code"),
    [(0, "bad_magic"), (4, "unsupported_version"), (7, "unsupported_version"), (42, "bad_index"), (46, "bad_layout"),
     (48, "bad_layout"), (55, "bad_layout"), (60, "length_mismatch"), (70, "bad_checksum")],
)  # fmt: skip
def test_flipped_header_byte_is_caught(layout, artifact_bytes, offset, code):
    msg = bytearray(encode_chunk(layout, 1, artifact_bytes[1024:2048]))
    msg[offset] ^= 0x40
    assert _rejects(bytes(msg)) == code


def test_truncated_messages_are_caught(layout, artifact_bytes):
    msg = encode_chunk(layout, 1, artifact_bytes[1024:2048])
    assert _rejects(msg[:50]) == "truncated"
    assert _rejects(msg[:-1]) == "length_mismatch"
    assert _rejects(msg + b"x") == "length_mismatch"


def test_encode_refuses_wrong_payload_length_or_index(layout):
    with pytest.raises(ProtocolError, match="must be 1024 bytes"):
        encode_chunk(layout, 0, b"short")
    with pytest.raises(ProtocolError, match="outside"):
        encode_chunk(layout, 11, b"")


@pytest.mark.parametrize(
    ("sha", "size", "chunk_size", "match"),
    [("X" * 64, 10, 1024, "hex"), ("a" * 64, 0, 1024, "positive"), ("a" * 64, 10, 100, "outside"),
     ("a" * 64, (1 << 20) * 1024 + 1, 1024, "larger chunk size")],
)  # fmt: skip
def test_bad_layouts_are_refused(sha, size, chunk_size, match):
    with pytest.raises(ProtocolError, match=match):
        ChunkLayout(sha, size, chunk_size)


def test_default_chunk_fits_common_broker_limits():
    assert publish_size(DEFAULT_CHUNK_SIZE) < 128 * 1024  # AWS IoT Core's limit, the strictest common one
    assert check_chunk_size(DEFAULT_CHUNK_SIZE, max_packet=128 * 1024) == DEFAULT_CHUNK_SIZE
    with pytest.raises(ProtocolError, match="at most") as err:
        check_chunk_size(128 * 1024, max_packet=128 * 1024)
    assert "over the broker's maximum" in err.value.reason

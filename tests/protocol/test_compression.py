"""Compressed JSON payloads: every JSON kind round-trips compressed, plain JSON (older senders) still decodes,
and a zip bomb, a torn or damaged stream, or an unknown dictionary is refused with a code, never more memory."""

from __future__ import annotations

import json
import tracemalloc
import zlib

import pytest

from edgeml.protocol import MAX_MESSAGE_BYTES, ProtocolError, compress_payload, decode, encode, inflate_payload
from edgeml.protocol.compression import DICTIONARY_V1, ZLIB_FIRST_BYTE

KINDS = ["hello", "status", "event", "telemetry", "chunk_request", "desired_state"]


def _zlib(data: bytes, zdict: bytes | None = None) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, *([zdict] if zdict else []))
    return packer.compress(data) + packer.flush()


def _code(kind: str, data: bytes) -> str:
    with pytest.raises(ProtocolError) as err:
        decode(kind, data)
    return err.value.code


@pytest.mark.parametrize("kind", KINDS)
def test_every_json_kind_round_trips_compressed(messages, kind):
    plain = encode(messages[kind])
    for packed in (_zlib(plain, DICTIONARY_V1), _zlib(plain)):  # with the preset dictionary or without
        assert packed[0] == ZLIB_FIRST_BYTE
        assert decode(kind, packed) == messages[kind]
    assert decode(kind, plain) == messages[kind]  # plain JSON, as every older sender sends it


def test_compress_only_when_smaller(messages):
    plain = encode(messages["telemetry"])
    packed = compress_payload(plain)
    assert len(packed) < len(plain) and inflate_payload(packed, MAX_MESSAGE_BYTES) == plain
    tiny = b'{"a":1}'
    assert compress_payload(tiny) == tiny
    assert inflate_payload(tiny, MAX_MESSAGE_BYTES) == tiny


def test_the_dictionary_is_frozen():
    # NOTE: receivers look the dictionary up by this id; editing it breaks every device that sends with it
    assert zlib.adler32(DICTIONARY_V1) == 0x9D7550BD and len(DICTIONARY_V1) == 1268


def test_a_zip_bomb_is_refused_without_inflating_it():
    bomb = _zlib(b'{"schema":"edgeml/v1/telemetry","v":1,"pad":"' + b"0" * (64 << 20) + b'"}')
    assert len(bomb) < MAX_MESSAGE_BYTES
    tracemalloc.start()
    try:
        assert _code("telemetry", bomb) == "too_large"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_MESSAGE_BYTES, f"inflating a bomb peaked at {peak} bytes"
    just_over = _zlib(b" " * MAX_MESSAGE_BYTES + b"{}")
    assert _code("status", just_over) == "too_large"
    assert _code("status", b"\x78" + b"\x9c" * MAX_MESSAGE_BYTES) == "too_large"  # the compressed size is capped too


def test_torn_and_damaged_streams_are_refused_with_a_code(messages):
    packed = compress_payload(encode(messages["telemetry"]))
    assert _code("telemetry", packed[:1]) == "truncated"
    assert _code("telemetry", packed[:4]) == "truncated"  # inside the dictionary id
    assert _code("telemetry", packed[: len(packed) // 2]) == "truncated"
    assert _code("telemetry", packed[:-1]) == "truncated"  # the Adler-32 trailer cut short
    checksum = bytearray(packed)
    checksum[-1] ^= 0xFF
    assert _code("telemetry", bytes(checksum)) == "malformed"
    assert _code("telemetry", packed + b"{}") == "malformed"  # bytes after the stream
    assert _code("telemetry", b"\x78\x00" + packed[2:]) == "malformed"  # header check (FCHECK) fails
    assert _code("telemetry", b"\x78\x9c" + b"\xff" * 40) == "malformed"  # not deflate data
    assert _code("telemetry", _zlib(b"\xff\xfe not json")) == "malformed"  # inflates, but to no JSON
    nested = _zlib(packed)
    assert _code("telemetry", nested) == "malformed"  # compressed once, never twice


def test_an_unknown_dictionary_is_an_unsupported_version(messages):
    packed = _zlib(encode(messages["status"]), b"another dictionary, from a newer sender")
    with pytest.raises(ProtocolError) as err:
        decode("status", packed)
    assert err.value.code == "unsupported_version" and "upgrade" in (err.value.hint or "")


def test_decode_accepts_bytes_like_compressed_payloads(messages):
    packed = compress_payload(encode(messages["telemetry"]))
    assert decode("telemetry", memoryview(packed)) == messages["telemetry"]
    assert decode("telemetry", bytearray(packed)) == messages["telemetry"]
    assert json.loads(inflate_payload(packed, MAX_MESSAGE_BYTES))["seq"] == 12

"""Arbitrary bytes never crash a receiver: decode returns a payload or raises ProtocolError, nothing else.

A seeded loop (hypothesis is not a dependency): byte-level mutations of valid messages, which mostly test
the JSON and header parsers, and field-level mutations that swap values for hostile ones, which reach
every validator.
"""

from __future__ import annotations

import copy
import json
import random

import pytest

from edgeml.protocol import ChunkLayout, ProtocolError, compress_payload, decode, encode, encode_chunk

KINDS = ["hello", "status", "event", "telemetry", "chunk_request", "desired_state"]
HOSTILE = [
    None, True, False, 0, -1, 1.5, -0.0, 2**53, 2**64, 10**400, "", "x" * 2000, "\u0000", "\ud800", "+/#",
    [], [None], [[1, 2]], {}, {"": None}, {"schema": "edgeml/v1/hello", "v": 1}, [[[[[[]]]]]], 1e308,
]  # fmt: skip


def _decode_or_reject(kind: str, data: bytes) -> None:
    try:
        decode(kind, data)
    except ProtocolError as exc:
        assert exc.code and exc.reason
    except Exception as exc:  # the property under test: nothing else escapes
        pytest.fail(f"decode({kind!r}) raised {type(exc).__name__}: {exc!r} on {data[:200]!r}")


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(i, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2:
            del b[i : i + rng.randint(1, 16)]
        elif op == 3:
            b = b[:i]
        else:
            b[i:i] = rng.choice([b"{", b"}", b"[", b"]", b",", b":", b'"', b"null", b"1e999", b"\\u"])
    return bytes(b)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _mutate_fields(rng: random.Random, body: dict) -> bytes:
    body = json.loads(json.dumps(body))
    for _ in range(rng.randint(1, 3)):
        path = rng.choice([p for p in _paths(body) if p])
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and rng.random() < 0.15:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(HOSTILE))
    return json.dumps(body).encode()


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_bytes_never_crash(messages, kind):
    rng = random.Random(f"bytes-{kind}")
    data = encode(messages[kind])
    for _ in range(600):
        _decode_or_reject(kind, _mutate_bytes(rng, data))


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_compressed_payloads_never_crash(messages, kind):
    rng = random.Random(f"zlib-{kind}")
    data = compress_payload(encode(messages[kind]))
    for _ in range(600):
        mutated = _mutate_bytes(rng, data)
        _decode_or_reject(kind, b"\x78" + mutated[1:] if mutated else mutated)  # most keep the zlib first byte


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_fields_never_crash(messages, kind):
    rng = random.Random(f"fields-{kind}")
    body = messages[kind].to_dict()
    for _ in range(600):
        _decode_or_reject(kind, _mutate_fields(rng, body))


def test_random_bytes_never_crash():
    rng = random.Random(1)
    for _ in range(500):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        for kind in [*KINDS, "chunk"]:
            _decode_or_reject(kind, data)


def test_mutated_chunks_never_crash(artifact_bytes):
    rng = random.Random(2)
    layout = ChunkLayout.of(artifact_bytes, 1024)
    data = encode_chunk(layout, 3, artifact_bytes[3072:4096])
    for _ in range(2000):
        _decode_or_reject("chunk", _mutate_bytes(rng, data))

"""Every payload kind round-trips through encode/decode, and every validation rule rejects with its code."""

from __future__ import annotations

import copy
import json

import pytest

from edgeml.protocol import (
    MAX_MESSAGE_BYTES,
    ChunkRequest,
    Kind,
    ProtocolError,
    Status,
    decode,
    decode_published,
    encode,
    hello_topic,
    status_topic,
)

KINDS = ["hello", "status", "event", "telemetry", "chunk_request", "desired_state"]


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip(messages, kind):
    message = messages[kind]
    data = encode(message)
    assert decode(kind, data) == message
    assert decode(Kind(kind), data) == message
    assert json.loads(data)["schema"] == f"edgeml/v1/{kind}" and json.loads(data)["v"] == 1


def test_encoding_is_compact_and_canonical(messages):
    data = encode(messages["hello"])
    assert b" " not in data.replace(b'" "', b"")
    assert data == encode(decode("hello", data))


def test_status_offline_will_keeps_slots(messages):
    will = messages["status"].as_offline()
    assert decode("status", encode(will)) == will and not will.online and will.version == "1.2.0"


def test_chunk_request_ranges(messages):
    req = messages["chunk_request"]
    assert req.missing == ((0, 3), (7, 8), (9, 11))
    assert list(req.indices()) == [0, 1, 2, 7, 9, 10]


def _mutated(messages, kind, path, value):
    body = copy.deepcopy(messages[kind].to_dict())
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(body).encode()


_DELETE = object()
REJECTIONS = [
    ("hello", ["v"], 2, "unsupported_version"),
    ("hello", ["v"], True, "unsupported_version"),
    ("hello", ["schema"], "edgeml/v1/status", "wrong_schema"),
    ("hello", ["device_id"], _DELETE, "missing_field"),
    ("hello", ["device_id"], "a/b", "invalid_field"),
    ("hello", ["device_id"], "x" * 65, "out_of_range"),
    ("hello", ["free_storage_bytes"], -1, "out_of_range"),
    ("hello", ["free_storage_bytes"], 1.5, "invalid_field"),
    ("hello", ["free_storage_bytes"], True, "invalid_field"),
    ("hello", ["free_storage_bytes"], 2**53, "out_of_range"),
    ("hello", ["runtimes"], {f"r{i}": "1" for i in range(17)}, "too_many_items"),
    ("hello", ["runtimes"], {"ort": 1}, "invalid_field"),
    ("hello", ["agent_version"], "1.0\n", "invalid_field"),
    ("hello", ["agent_version"], "1.0\ud800", "invalid_field"),
    ("hello", ["current", "sha256"], "ABC", "invalid_field"),
    ("hello", ["current", "release"], "1", "invalid_field"),
    ("status", ["online"], "yes", "invalid_field"),
    ("status", ["state"], "Committed", "invalid_field"),
    ("status", ["active"], "c", "invalid_field"),
    ("status", ["slots"], [], "invalid_field"),
    ("event", ["ok"], 1, "invalid_field"),
    ("event", ["reason"], "x" * 1025, "out_of_range"),
    ("event", ["artifact"], "not-a-digest", "invalid_field"),
    ("telemetry", ["period_end"], 1, "out_of_range"),
    ("telemetry", ["counts", "errors"], -1, "out_of_range"),
    ("telemetry", ["latency_ms", "alpha"], 0.9, "invalid_field"),
    ("telemetry", ["latency_ms"], "p99=3", "invalid_field"),
    ("telemetry", ["drift", "input", "64"], [1], "invalid_field"),
    ("telemetry", ["drift", "input", "01"], [1], "invalid_field"),
    ("telemetry", ["drift", "input", "0"], [1, -2], "out_of_range"),
    ("telemetry", ["drift", "input", "0"], [0] * 257, "too_many_items"),
    ("telemetry", ["output_classes", "logits"], {"0": 1}, "invalid_field"),
    ("chunk_request", ["missing"], [], "invalid_field"),
    ("chunk_request", ["missing"], [[3, 3]], "out_of_range"),
    ("chunk_request", ["missing"], [[5, 9], [0, 2]], "invalid_field"),
    ("chunk_request", ["missing"], [[0, 2], [2, 4]], "invalid_field"),
    ("chunk_request", ["missing"], [[0, 1, 2]], "invalid_field"),
    ("chunk_request", ["chunk_size"], 100, "out_of_range"),
    ("desired_state", ["signature"], _DELETE, "unsigned"),
    ("desired_state", ["signature", "value"], 5, "invalid_field"),
    ("desired_state", ["sequence"], 0, "out_of_range"),
    ("desired_state", ["deadline"], 1, "out_of_range"),
    ("desired_state", ["allow_rollback"], "false", "invalid_field"),
    ("desired_state", ["artifact", "chunk_count"], 3, "invalid_field"),
    ("desired_state", ["artifact", "chunk_size"], 10, "out_of_range"),
    ("desired_state", ["artifact", "size"], 0, "out_of_range"),
    ("desired_state", ["artifact", "target"], "cpu ort", "invalid_field"),
    ("desired_state", ["artifact"], None, "missing_field"),
]


@pytest.mark.parametrize(("kind", "path", "value", "code"), REJECTIONS, ids=lambda x: str(x)[:30])
def test_each_rule_rejects_with_its_code(messages, kind, path, value, code):
    with pytest.raises(ProtocolError) as err:
        decode(kind, _mutated(messages, kind, path, value))
    assert err.value.code == code, err.value.reason
    assert err.value.reason


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b"[1, 2]", "invalid_field"),
        (b'{"a": NaN}', "malformed"),
        (b'{"a": Infinity}', "malformed"),
        (b'{"v": 1, "v": 1}', "malformed"),
        (b"[" * 100_000, "malformed"),
        (b'{"n": ' + b"9" * 5000 + b"}", "malformed"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "too_large"),
    ],
)
def test_bad_bytes_are_rejected(data, code):
    with pytest.raises(ProtocolError) as err:
        decode("hello", data)
    assert err.value.code == code


def test_unknown_kind_and_non_bytes_are_rejected():
    with pytest.raises(ProtocolError, match="not a message kind"):
        decode("goodbye", b"{}")
    with pytest.raises(ProtocolError, match="not bytes"):
        decode("hello", "{}")  # type: ignore[arg-type]


def test_unknown_fields_are_ignored_for_additive_evolution(messages):
    body = messages["event"].to_dict() | {"battery_pct": 40}
    assert decode("event", json.dumps(body).encode()) == messages["event"]


def test_unsupported_version_says_what_to_do(messages):
    with pytest.raises(ProtocolError, match="v=2") as err:
        decode("status", _mutated(messages, "status", ["v"], 2))
    assert "upgrade" in str(err.value)


def test_encode_refuses_what_a_receiver_would_reject(messages):
    bad = Status("Not A Token", True, 0)
    with pytest.raises(ProtocolError, match=r"status\.state"):
        encode(bad)
    huge = ChunkRequest("a" * 64, 1024, tuple((i * 2, i * 2 + 1) for i in range(1025)))
    with pytest.raises(ProtocolError, match="at most 1024"):
        encode(huge)


def test_decode_published_checks_topic_and_payload_agree(messages):
    topic, hello = decode_published(hello_topic("dev-1"), encode(messages["hello"]))
    assert topic.kind is Kind.HELLO and topic.device_id == "dev-1" and hello == messages["hello"]
    with pytest.raises(ProtocolError) as err:
        decode_published(hello_topic("dev-2"), encode(messages["hello"]))
    assert err.value.code == "topic_mismatch"
    with pytest.raises(ProtocolError) as err:
        decode_published(status_topic("dev-1"), encode(messages["hello"]))
    assert err.value.code == "wrong_schema"

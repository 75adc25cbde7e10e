"""Payload object ⇄ bytes on the wire: compact JSON for every kind but chunks, which are binary.

`decode(kind, data)` is the one entry point a receiver calls on untrusted bytes. It checks the size cap,
inflates a compressed payload (compression.py: told apart by its first byte and inflated to at most the same
cap, so plain JSON from older senders and compressed JSON both decode), parses strictly (UTF-8, no
NaN/Infinity, no duplicate keys, bounded nesting), validates every field, and raises `ProtocolError` (with a
`code` to count) and nothing else, whatever the bytes. `encode` checks what it sends the same way, so a
sender finds its own bug before a receiver has to; it writes plain JSON (`compress_payload` compacts a
payload for the wire where that pays, as the agent does for telemetry).
"""

from __future__ import annotations

import json
from typing import Any

from edgeml.artifact.canonical import canonical_json
from edgeml.protocol.bench_job import SignedBenchJob
from edgeml.protocol.bench_result import BenchResult
from edgeml.protocol.chunk_request import ChunkRequest
from edgeml.protocol.chunks import Chunk, decode_chunk
from edgeml.protocol.compression import inflate_payload
from edgeml.protocol.desired_state import SignedDesiredState
from edgeml.protocol.event import Event
from edgeml.protocol.hello import Hello
from edgeml.protocol.kind import Kind
from edgeml.protocol.protocol_error import ProtocolError
from edgeml.protocol.status import Status
from edgeml.protocol.telemetry import Telemetry
from edgeml.protocol.topics import Topic, parse_topic

__all__ = ["MAX_MESSAGE_BYTES", "Message", "decode", "decode_published", "encode"]

MAX_MESSAGE_BYTES = 256 * 1024  # per JSON message, compressed or inflated; a chunk message: its chunk size

Message = Hello | Status | Event | Telemetry | ChunkRequest | SignedDesiredState | SignedBenchJob | BenchResult
PAYLOADS: dict[Kind, type[Message]] = {
    Kind.HELLO: Hello,
    Kind.STATUS: Status,
    Kind.EVENT: Event,
    Kind.TELEMETRY: Telemetry,
    Kind.CHUNK_REQUEST: ChunkRequest,
    Kind.DESIRED_STATE: SignedDesiredState,
    Kind.BENCH_JOB: SignedBenchJob,
    Kind.BENCH_RESULT: BenchResult,
}


def encode(message: Message) -> bytes:
    """A payload → the bytes to publish (canonical JSON: sorted keys, no spaces); checked before it goes."""
    body = message.to_dict()
    type(message).from_dict(body)
    try:
        data = canonical_json(body)
    except (UnicodeEncodeError, ValueError) as exc:
        raise ProtocolError("malformed", f"{message.KIND.value} payload cannot be encoded: {exc}") from None
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            "too_large", f"{message.KIND.value} message is {len(data)} bytes, over {MAX_MESSAGE_BYTES}",
            "send fewer histograms per batch, or a shorter telemetry period",
        )  # fmt: skip
    return data


def decode(kind: Kind | str, data: bytes) -> Message | Chunk:
    """Received bytes of `kind` → a validated payload, or ProtocolError; never any other exception."""
    kind = _kind(kind)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError("malformed", f"{kind.value} payload is a {type(data).__name__}, not bytes")
    if kind is Kind.CHUNK:
        return decode_chunk(data)
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"{kind.value} message is {len(data)} bytes, over {MAX_MESSAGE_BYTES}")
    return PAYLOADS[kind].from_dict(load_json(inflate_payload(bytes(data), MAX_MESSAGE_BYTES)))


def decode_published(topic: str, data: bytes) -> tuple[Topic, Message | Chunk]:
    """An MQTT (topic, payload) → the parsed topic and payload, checking that they agree."""
    parsed = parse_topic(topic)
    message = decode(parsed.kind, data)
    _check_agrees(parsed, message)
    return parsed, message


def load_json(data: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no duplicate keys; ProtocolError('malformed') otherwise."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        raise ProtocolError("malformed", f"payload is not valid JSON: {reason[:200]}") from None


def _kind(kind: Kind | str) -> Kind:
    try:
        return Kind(kind)
    except ValueError:
        raise ProtocolError("unknown_kind", f"{kind!r} is not a message kind") from None


def _check_agrees(topic: Topic, message: Message | Chunk) -> None:
    device = None
    if isinstance(message, Hello):
        device = message.device_id
    elif isinstance(message, SignedDesiredState):
        device = message.state.device_id
    elif isinstance(message, SignedBenchJob):
        device = message.job.device_id
    if device is not None and device != topic.device_id:
        raise ProtocolError("topic_mismatch", f"payload names device {device!r}, topic {topic.device_id!r}")
    if isinstance(message, Chunk) and message.layout.sha256 != topic.artifact:
        raise ProtocolError("topic_mismatch", f"chunk of {message.layout.sha256[:12]}… on another artifact's topic")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate keys in an object")
    return obj

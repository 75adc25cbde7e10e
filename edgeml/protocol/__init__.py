"""The edgeml/v1 wire protocol the fleet and the device agent share: topics, payloads, signed desired
state, artifact chunks. Light on purpose (no MQTT client, no numpy at import): see docs/protocol.md.

Receivers call `decode` / `decode_published` on untrusted bytes and catch `ProtocolError`, the only
exception they raise; senders call `encode`, which checks the payload the same way first.
"""

from __future__ import annotations

from edgeml.protocol.assembler import AddResult, Assembler, Checkpoints
from edgeml.protocol.bench_job import BenchJob, BenchJobGuard, BenchVerdict, SignedBenchJob, sign_bench_job
from edgeml.protocol.bench_result import BenchResult
from edgeml.protocol.chunk_request import ChunkRequest
from edgeml.protocol.chunks import (
    DEFAULT_CHUNK_SIZE,
    HEADER_SIZE,
    Chunk,
    ChunkLayout,
    check_chunk_size,
    decode_chunk,
    encode_chunk,
    iter_chunks,
    publish_size,
)
from edgeml.protocol.codec import MAX_MESSAGE_BYTES, Message, decode, decode_published, encode
from edgeml.protocol.compression import compress_payload, inflate_payload
from edgeml.protocol.desired_state import (
    ArtifactRef,
    DesiredState,
    SignedDesiredState,
    sign_desired_state,
    verify_desired_state,
)
from edgeml.protocol.desired_state_guard import DesiredStateGuard, Verdict
from edgeml.protocol.event import Event
from edgeml.protocol.fields import PROTOCOL_VERSION
from edgeml.protocol.hello import Hello
from edgeml.protocol.kind import Kind
from edgeml.protocol.model_ref import ModelRef
from edgeml.protocol.protocol_error import ProtocolError
from edgeml.protocol.status import Status
from edgeml.protocol.telemetry import Telemetry
from edgeml.protocol.topics import (
    PREFIX,
    Topic,
    artifact_chunks_topic,
    bench_result_topic,
    bench_topic,
    check_device_id,
    chunk_request_topic,
    desired_topic,
    device_acl,
    device_subscriptions,
    device_topic,
    events_topic,
    fleet_subscriptions,
    hello_topic,
    parse_topic,
    status_topic,
    telemetry_topic,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "HEADER_SIZE",
    "MAX_MESSAGE_BYTES",
    "PREFIX",
    "PROTOCOL_VERSION",
    "AddResult",
    "ArtifactRef",
    "Assembler",
    "BenchJob",
    "BenchJobGuard",
    "BenchResult",
    "BenchVerdict",
    "Checkpoints",
    "Chunk",
    "ChunkLayout",
    "ChunkRequest",
    "DesiredState",
    "DesiredStateGuard",
    "Event",
    "Hello",
    "Kind",
    "Message",
    "ModelRef",
    "ProtocolError",
    "SignedBenchJob",
    "SignedDesiredState",
    "Status",
    "Telemetry",
    "Topic",
    "Verdict",
    "artifact_chunks_topic",
    "bench_result_topic",
    "bench_topic",
    "check_chunk_size",
    "check_device_id",
    "chunk_request_topic",
    "compress_payload",
    "decode",
    "decode_chunk",
    "decode_published",
    "desired_topic",
    "device_acl",
    "device_subscriptions",
    "device_topic",
    "encode",
    "encode_chunk",
    "events_topic",
    "fleet_subscriptions",
    "hello_topic",
    "inflate_payload",
    "iter_chunks",
    "parse_topic",
    "publish_size",
    "sign_bench_job",
    "sign_desired_state",
    "status_topic",
    "telemetry_topic",
    "verify_desired_state",
]

"""The protocol's public surface is pinned, and the light core stays light: no MQTT client, no ML stack,
no numpy at import."""

from __future__ import annotations

import subprocess
import sys

import edgeml.protocol


def test_protocol_exports_are_pinned():
    assert sorted(edgeml.protocol.__all__) == sorted([
        "DEFAULT_CHUNK_SIZE", "HEADER_SIZE", "MAX_MESSAGE_BYTES", "PREFIX", "PROTOCOL_VERSION", "AddResult",
        "ArtifactRef", "Assembler", "Checkpoints", "Chunk", "ChunkLayout", "ChunkRequest", "DesiredState",
        "DesiredStateGuard", "Event", "Hello", "Kind", "Message", "ModelRef", "ProtocolError", "SignedDesiredState",
        "Status", "Telemetry", "Topic", "Verdict", "artifact_chunks_topic", "check_chunk_size", "check_device_id",
        "chunk_request_topic", "compress_payload", "decode", "decode_chunk", "decode_published", "desired_topic",
        "device_acl", "device_subscriptions", "device_topic", "encode", "encode_chunk", "events_topic",
        "fleet_subscriptions", "hello_topic", "inflate_payload", "iter_chunks", "parse_topic", "publish_size",
        "sign_desired_state", "status_topic", "telemetry_topic", "verify_desired_state",
        "BenchJob", "BenchJobGuard", "BenchResult", "BenchVerdict", "SignedBenchJob", "bench_result_topic",
        "bench_topic", "sign_bench_job",
    ])  # fmt: skip
    for name in edgeml.protocol.__all__:
        assert hasattr(edgeml.protocol, name), name


def test_protocol_error_is_an_edgeml_error():
    from edgeml.errors import EdgemlError

    assert issubclass(edgeml.protocol.ProtocolError, EdgemlError)


def test_light_core_imports_nothing_heavy():
    heavy = ("paho", "torch", "onnx", "onnxruntime", "openvino", "tensorflow", "numpy")
    code = (
        "import sys, edgeml.protocol, edgeml.sketches; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import edgeml.protocol, edgeml.sketches pulled in {out.strip()}"

"""Sample payloads of every kind and a fleet key, shared by the protocol tests (fixtures, not imports)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeml.protocol import (
    ArtifactRef,
    ChunkLayout,
    ChunkRequest,
    DesiredState,
    Event,
    Hello,
    ModelRef,
    Status,
    Telemetry,
    sign_desired_state,
)
from edgeml.sketches import DDSketch

SHA = hashlib.sha256(b"model-v1").hexdigest()
ARTIFACT_BYTES = bytes(range(256)) * 40 + b"tail"  # 10 244 bytes: 11 chunks of 1 KiB, the last short


@pytest.fixture(scope="session")
def fleet_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def model() -> ModelRef:
    return ModelRef("digits", "1.2.0", 1_002_000, SHA)


@pytest.fixture
def artifact_ref() -> ArtifactRef:
    layout = ChunkLayout.of(ARTIFACT_BYTES, 1024)
    return ArtifactRef("digits", "1.2.0", 1_002_000, layout.sha256, layout.size, 1024, layout.count, "cpu-ort")


@pytest.fixture
def desired(artifact_ref) -> DesiredState:
    return DesiredState("dev-1", artifact_ref, "rollout-7", sequence=5, issued_at=1_700_000_000, deadline=1_700_003_600)


@pytest.fixture
def messages(model, desired, fleet_key) -> dict:
    """One valid payload of every JSON kind."""
    latency = DDSketch()
    for v in (1.5, 2.0, 2.5, 40.0):
        latency.add(v)
    drift, classes = {"input": {0: (1, 2, 3), 1: (0, 0, 6)}}, {"logits": (3, 0, 1)}
    return {
        "hello": Hello("dev-1", "cpu-ort", "0.1.0", 5 << 30, {"onnxruntime": "1.32.0"}, model),
        "status": Status("committed", True, 1_700_000_100, {"a": model, "b": None}, "a", 5),
        "event": Event("installed", "installing", True, 3, 1_700_000_050, "", SHA, 1_002_000, "rollout-7"),
        "telemetry": Telemetry(12, 1_700_000_000, 1_700_000_060, model, latency, 4, 1, drift, classes),
        "chunk_request": ChunkRequest.for_indices(SHA, 1024, [0, 1, 2, 7, 9, 10]),
        "desired_state": sign_desired_state(desired, fleet_key),
    }


@pytest.fixture
def artifact_bytes() -> bytes:
    return ARTIFACT_BYTES

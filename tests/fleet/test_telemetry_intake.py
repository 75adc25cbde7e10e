"""Telemetry intake stores each (device, seq) once whatever the batch's encoding: a compressed batch and its
plain-JSON replay are one batch, and the agent's optional accuracy is read from either."""

from __future__ import annotations

import json

from edgeml.artifact.canonical import canonical_json
from edgeml.fleet.telemetry_intake import TelemetryIntake, feedback_accuracy
from edgeml.protocol import ModelRef, Telemetry, compress_payload, decode, encode
from edgeml.sketches import DDSketch


def _batch(seq: int) -> bytes:
    sketch = DDSketch()
    for v in (1.0, 2.0, 3.0):
        sketch.add(v)
    model = ModelRef("digits", "1.2.3", 1_002_003, "ab" * 32)
    body = json.loads(encode(Telemetry(seq, 100, 160, model, sketch, 3, 0, {"input": {0: (1, 2)}}, {"y": (2, 1)})))
    return canonical_json(body | {"accuracy": {"y": {"labelled": 3, "correct": 2}}})


def test_a_compressed_batch_and_its_plain_replay_are_stored_once(fleet):
    intake, plain = TelemetryIntake(fleet.db), _batch(7)
    packed = compress_payload(plain)
    assert packed[:1] == b"x" and len(packed) < len(plain)
    assert intake.record("dev-1", decode("telemetry", packed), 1000.0, packed)
    assert not intake.record("dev-1", decode("telemetry", packed), 1001.0, packed)  # QoS 1 redelivery
    assert not intake.record("dev-1", decode("telemetry", plain), 1002.0, plain)  # spooled before an upgrade
    rows = fleet.db.query("SELECT seq, calls, labelled, correct FROM telemetry WHERE device_id = 'dev-1'")
    assert [tuple(r) for r in rows] == [(7, 3, 3, 2)]
    assert intake.aggregate(["ab" * 32], None, 0.0).correct == 2


def test_accuracy_is_read_from_plain_and_compressed_payloads_and_never_rejects():
    plain = _batch(1)
    assert feedback_accuracy(plain) == feedback_accuracy(compress_payload(plain)) == (3, 2)
    assert feedback_accuracy(compress_payload(plain)[:-3]) == (0, 0)  # torn stream: no accuracy, no exception
    assert feedback_accuracy(b"") == (0, 0)

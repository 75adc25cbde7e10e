"""Telemetry from predict calls: drift counted over exactly the manifest's reference bins, output classes and
confidence, feedback accuracy, a bounded predict path, and a batch that intake decodes, whose latency
sketch answers p99 within its stated accuracy."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from edgeml.artifact import read_manifest
from edgeml.device_agent.serving.serving_model import ServingModel
from edgeml.device_agent.telemetry.drift_alarm import DriftAlarm
from edgeml.device_agent.telemetry.memory_usage import MemoryUsage
from edgeml.device_agent.telemetry.reference_bins import ReferenceBins, _subsample, thaw
from edgeml.device_agent.telemetry.telemetry_batch import build_batch
from edgeml.device_agent.telemetry.telemetry_collector import TelemetryCollector
from edgeml.device_agent.update.installer import ActiveModel
from edgeml.drift import bin_counts, top1_confidence
from edgeml.protocol import MAX_MESSAGE_BYTES, Kind, decode, inflate_payload

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def serving(digits_artifact):
    manifest = read_manifest(digits_artifact)
    return ServingModel.open(ActiveModel(manifest, digits_artifact / "model.onnx"), "a", "ab" * 32)


def _inputs(n, batch=1):
    with np.load(__import__("pathlib").Path(__file__).resolve().parents[3] / "examples/digits/eval.npz") as z:
        x = z["input"].astype(np.float32)
    return [x[i : i + batch] for i in range(0, n * batch, batch)]


def _run(collector, serving, xs, latencies=None):
    outputs = []
    for i, x in enumerate(xs):
        out = serving.session.run({"input": x})
        latency = latencies[i] if latencies is not None else 0.001
        collector.record((i, serving, latency, serving.bins.snapshot({"input": x}), out))
        outputs.append(out["logits"])
    return np.concatenate(outputs)


def test_counts_line_up_with_the_reference_bins(serving):
    collector = TelemetryCollector()
    xs = _inputs(20) + _inputs(5, batch=3)  # batch sizes mix: one concatenation still works
    logits = _run(collector, serving, xs)
    (period,) = collector.cut()
    profile = serving.manifest["reference_profile"]
    everything = np.concatenate(xs)
    for f, feature in enumerate(profile["inputs"]["input"]["features"]):
        expected = bin_counts(everything[:, f].reshape(-1), feature["edges"])
        assert period.input_counts[0][f].tolist() == expected.tolist()
        assert len(expected) == len(feature["counts"])
    out = profile["outputs"]["logits"]
    assert period.class_counts[0].tolist() == np.bincount(logits.argmax(1), minlength=10).tolist()
    confidence = bin_counts(top1_confidence(logits), out["confidence"]["edges"])
    assert period.confidence_counts[0].tolist() == confidence.tolist()
    assert (period.calls, period.errors, period.latency_ms.count) == (25, 0, 25)


def test_the_caller_may_reuse_its_buffers(serving):
    collector = TelemetryCollector()
    x = _inputs(1)[0].copy()
    collector.record((1, serving, 0.001, serving.bins.snapshot({"input": x}), serving.session.run({"input": x})))
    expected = bin_counts(x.reshape(-1), serving.bins.inputs[0].edges[0])
    x[:] = 99.0  # the application refills its buffer before the telemetry thread counts
    (period,) = collector.cut()
    assert period.input_counts[0][0].tolist() == expected.tolist()


def test_large_inputs_are_subsampled_per_feature():
    x = np.stack([np.full((3, 200, 200), c, np.float32) for c in range(4)], axis=1)  # [3, 4, 200, 200]
    sub = _subsample(x, 1, 4096)
    assert sub.shape[1] == 4 and sub.size <= 2 * 4096
    assert all(np.all(sub[:, c] == c) for c in range(4))
    assert _subsample(np.arange(100_000.0), None, 4096).size <= 4096
    bins = ReferenceBins.from_manifest({"reference_profile": {"inputs": {"x": {"axis": 1, "features": [
        {"edges": [0.5], "counts": [1, 1]}] * 4}}}})  # fmt: skip
    assert thaw(bins.snapshot({"x": x})[0]).size <= 2 * 4096


def test_snapshots_are_exact_copies_and_mixed_calls_still_count(serving):
    x = RNG.normal(size=(2, 1, 8, 8)).astype(np.float32)
    fortran = np.asfortranarray(RNG.normal(size=(1, 1, 8, 8)))  # float64, column-major: kept by value
    for a in (x, fortran, x[:, :, ::2, ::2]):
        (frozen,) = serving.bins.snapshot({"input": a})
        assert np.array_equal(thaw(frozen), a) and thaw(frozen).dtype == a.dtype
    assert serving.bins.snapshot({"input": np.array([[1, "a"]], dtype=object)}) == (None,)  # pointers, not values
    assert serving.bins.snapshot({}) == (None,)
    collector = TelemetryCollector()
    calls = [x, fortran, x[:1].astype(np.float64), [[[[0.5] * 8] * 8]]]  # batch sizes, dtypes, a nested list
    for i, a in enumerate(calls):
        collector.record((i, serving, 0.001, serving.bins.snapshot({"input": a}), {"logits": np.zeros((1, 10))}))
    (period,) = collector.cut()
    everything = np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in calls])
    expected = bin_counts(everything, serving.bins.inputs[0].edges[0])
    assert period.input_counts[0][0].tolist() == expected.tolist()


def test_feedback_scores_recent_predictions(serving):
    collector = TelemetryCollector(remember=10)
    xs = _inputs(12)
    logits = _run(collector, serving, xs)
    predicted = logits.argmax(1)
    assert collector.feedback(11, int(predicted[11]))
    assert collector.feedback(10, (int(predicted[10]) + 1) % 10)
    assert not collector.feedback(0, 3)  # forgotten: only the last 10 are kept
    assert not collector.feedback("never-seen", 3)
    with pytest.raises(ValueError, match="2 label"):
        collector.feedback(9, [1, 2])
    (period,) = collector.cut()
    assert period.accuracy == {"logits": [2, 1]}


def test_a_starved_drain_drops_calls_but_still_counts_them(serving):
    collector = TelemetryCollector(max_pending=5)
    _run(collector, serving, _inputs(8))
    (period,) = collector.cut()
    assert (period.calls, period.dropped, period.latency_ms.count) == (8, 3, 5)


def test_the_batch_decodes_and_its_p99_is_within_alpha(serving):
    collector = TelemetryCollector(alpha=0.01, max_samples=2, sample_max_bytes=1024)
    latencies = list(RNG.lognormal(np.log(0.002), 0.6, size=400))
    _run(collector, serving, _inputs(400), latencies)
    collector.record(("bad", serving, 0.004, (), None))  # a call that raised
    (period,) = collector.cut()
    batch = build_batch(period, seq=7, end=period.start + 60, memory=MemoryUsage(30 << 20, 31 << 20))
    received = decode(Kind.TELEMETRY, batch.payload)
    assert (received.seq, received.calls, received.errors, received.model.sha256) == (7, 401, 1, "ab" * 32)
    exact = sorted([v * 1000 for v in latencies] + [4.0])
    p99 = exact[int(0.99 * (len(exact) - 1))]
    assert abs(received.latency_ms.quantile(0.99) - p99) <= 0.01 * p99
    assert received.drift["input"][0] == tuple(period.input_counts[0][0].tolist())
    body = json.loads(inflate_payload(batch.payload, MAX_MESSAGE_BYTES))
    assert body["memory"] == {"rss_bytes": 30 << 20, "peak_rss_bytes": 31 << 20}
    assert "dropped" not in body["counts"]
    assert "drift_scores" not in body and set(batch.drift_scores) == {"inputs", "outputs"}  # kept on the device
    assert len(body["samples"]) == 2
    sample = np.frombuffer(base64.b64decode(body["samples"][0]["inputs"]["input"]["data"]), np.float32)
    assert sample.size == 64
    assert len(batch.payload) < 4096


def test_the_batch_is_compressed_unless_asked_not_to_and_decodes_the_same(serving):
    collector = TelemetryCollector()
    _run(collector, serving, _inputs(300), list(RNG.lognormal(np.log(0.002), 0.6, size=300)))
    (period,) = collector.cut()
    packed = build_batch(period, 3, period.start + 60)
    plain = build_batch(period, 3, period.start + 60, compress=False)
    assert packed.payload[:1] == b"x" and plain.payload[:1] == b"{"
    assert len(packed.payload) < 0.6 * len(plain.payload)
    assert inflate_payload(packed.payload, MAX_MESSAGE_BYTES) == plain.payload
    assert decode(Kind.TELEMETRY, packed.payload) == decode(Kind.TELEMETRY, plain.payload)
    sketch = json.loads(plain.payload)["latency_ms"]
    exact = period.latency_ms
    for key in ("sum", "min", "max"):  # 6 significant digits on the wire
        assert sketch[key] == pytest.approx(getattr(exact, key), rel=5e-6) and len(repr(sketch[key])) <= 12


def test_drift_events_need_enough_calls_a_threshold_and_respect_the_interval(serving):
    clock = iter([0.0, 10.0, 5000.0]).__next__
    alarm = DriftAlarm(threshold=0.25, min_calls=50, interval_s=3600, clock=clock)
    collector = TelemetryCollector()
    shifted = [x + 0.5 for x in _inputs(60)]
    _run(collector, serving, shifted)
    (period,) = collector.cut()
    scores = build_batch(period, 1, period.start).drift_scores
    assert scores["inputs"]["input"]["0"][0] > 0.25
    reason = alarm.check(period, scores)
    assert reason and "input 'input' feature 0: PSI" in reason and "retraining" in reason
    assert alarm.check(period, scores) is None  # 10 s later: rate-limited
    assert alarm.check(period, scores) is not None  # past the interval
    _run(collector, serving, _inputs(400))  # held-out digits: no drift (fewer calls make PSI noisy)
    (calm,) = collector.cut()
    assert DriftAlarm(0.25, 50, 0).check(calm, build_batch(calm, 2, calm.start).drift_scores) is None
    assert DriftAlarm(0.25, 500, 0).check(period, scores) is None  # too few calls to judge

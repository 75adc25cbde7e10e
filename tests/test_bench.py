"""`edgeml bench`: both models timed in one interleaved run, ratio = artifact p50 / baseline p50."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import edgeml
from edgeml.errors import EdgemlError, VerificationError

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"


def test_bench_against_the_float_model(digits_artifact, keypair):
    result = edgeml.bench(digits_artifact, baseline=DIGITS / "model.onnx", seconds=0.3, pubkey=keypair[1])
    d = result.to_dict()
    assert d["verified"] and set(d["latency"]) == {"artifact", "baseline"}
    assert d["latency"]["artifact"]["n"] == d["latency"]["baseline"]["n"] >= 50
    a, b = d["latency"]["artifact"], d["latency"]["baseline"]
    assert a["p50_ms"] <= a["p90_ms"] <= a["p99_ms"]
    assert d["ratio"] == pytest.approx(a["p50_ms"] / b["p50_ms"], rel=1e-3)
    assert d["memory_mb"]["peak_rss"] > 0


def test_bench_refuses_a_tampered_artifact_when_a_key_is_given(digits_artifact, keypair, tmp_path):
    copy = tmp_path / "a"
    shutil.copytree(digits_artifact, copy)
    (copy / "model.onnx").write_bytes(b"x" + (copy / "model.onnx").read_bytes()[1:])
    with pytest.raises(VerificationError):
        edgeml.bench(copy, seconds=0.1, pubkey=keypair[1])


def test_bench_baseline_that_does_not_fit(digits_artifact, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )  # fmt: skip
    onnx.save(helper.make_model(graph), tmp_path / "other.onnx")
    with pytest.raises(EdgemlError, match="do not fit"):
        edgeml.bench(digits_artifact, baseline=tmp_path / "other.onnx", seconds=0.1)


def test_speed_verdict_allows_for_the_measured_noise():
    """Synthetic interleaved samples (seconds per round): a difference the run's blocks disagree on, or under
    the 2 % resolution, is "same"; a clear one is "faster"/"slower" with its size."""
    import numpy as np

    from edgeml.benchmark import compare_speed

    rng = np.random.default_rng(0)
    base = list(1e-4 * (1 + 0.05 * rng.standard_normal(2000)))
    steady = [b * 1.004 for b in base]  # 0.4 % slower in every round: consistent, but under the resolution
    assert compare_speed(steady, base).verdict == "same"
    drifting = [b * (0.97 if i < 1000 else 1.09) for i, b in enumerate(base)]  # 3 % overall; halves disagree
    c = compare_speed(drifting, base)
    assert c.low <= 1.0 <= c.high and c.verdict == "same"
    slower, faster = compare_speed([b * 1.2 for b in base], base), compare_speed([b * 0.8 for b in base], base)
    assert (slower.verdict, faster.verdict) == ("slower", "faster")
    assert "20.0% slower than the baseline" in slower.describe() and slower.to_dict()["ratio"] == 1.2

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

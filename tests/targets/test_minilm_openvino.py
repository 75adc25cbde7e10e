"""A real third-party transformer (all-MiniLM-L6-v2) through cpu-openvino and npu-openvino: NNCF INT8 with
the transformer settings, within the fidelity floor, and shipped because it is faster."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgeml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_cpu_openvino_ships_nncf_int8_within_the_fidelity_floor(minilm, tmp_path, keypair):
    result = edgeml.compile(
        str(minilm / "model.onnx"), "cpu-openvino", key=keypair[0], out=tmp_path / "m", name="minilm"
    )
    m = edgeml.verify(tmp_path / "m", keypair[1]).manifest
    assert "graph kind: transformer" in result.notes
    fp32, int8 = m["decision"]["candidates"]["fp32"], m["decision"]["candidates"]["int8"]
    assert int8["fidelity"]["sentence_embedding"]["cosine"] >= 0.99  # 0.9976 here
    assert fp32["fidelity"]["sentence_embedding"]["cosine"] >= 0.9999
    assert fp32["latency"]["p50_ms"] / int8["latency"]["p50_ms"] > 1.05  # 3.3× here, far above noise
    assert m["precision"] == "int8", m["decision"]["verdicts"]
    assert m["metrics"]["speedup_vs_float"] >= 2.0  # vs ONNX Runtime FP32: 3.5× here (the issue asks ≥ 2.8×)
    assert m["metrics"]["size_bytes"] < 0.3 * m["metrics"]["float_size_bytes"]
    notes = [n for p in m["provenance"]["passes"] for n in p["notes"]]
    assert any("NNCF INT8 (mixed preset, transformer)" in n for n in notes), notes


def test_npu_openvino_compiles_static_int8_and_fp16(minilm, tmp_path, keypair):
    shape = {"shape": "input_ids:1x32,attention_mask:1x32"}
    edgeml.compile(str(minilm / "model.onnx"), "npu-openvino", key=keypair[0], out=tmp_path / "n", name="minilm",
                   options=shape)  # fmt: skip
    m = edgeml.verify(tmp_path / "n", keypair[1]).manifest
    candidates = m["decision"]["candidates"]
    assert candidates["int8"]["fidelity"]["sentence_embedding"]["cosine"] >= 0.99
    # FP16 flushes MiniLM's dead embedding channel (|x| ~ 1e-33) to 0: that is not a destroyed channel
    assert candidates["fp16"]["fidelity"]["sentence_embedding"]["worst_channel_cosine"] >= 0.99
    assert m["precision"] == "int8", m["decision"]["verdicts"]  # the smaller of two passing candidates

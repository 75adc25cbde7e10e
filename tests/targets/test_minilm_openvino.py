"""A real third-party transformer (all-MiniLM-L6-v2) through cpu-openvino and npu-openvino: NNCF INT8 with
the transformer settings, within the fidelity floor, and shipped where this host runs it faster."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

import edgeml
from edgeml.targets import load_target

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
# NOTE: the default search budget scales with model size (9 min for MiniLM's 90 MB); a mix found within a
# minute or none at all (then float ships) is the same contract, and CI's time is bounded
SEARCH = {"search_budget_s": "60"}


def test_cpu_openvino_nncf_int8_meets_the_fidelity_floor_and_ships_where_it_is_faster(minilm, tmp_path, keypair):
    result = edgeml.compile(
        str(minilm / "model.onnx"),
        "cpu-openvino",
        key=keypair[0],
        out=tmp_path / "m",
        name="minilm",
        options=SEARCH,
    )
    m = edgeml.verify(tmp_path / "m", keypair[1]).manifest
    assert "graph kind: transformer" in result.notes
    d = m["decision"]
    fp32, int8 = d["candidates"]["fp32"], d["candidates"]["int8"]
    assert int8["fidelity"]["sentence_embedding"]["cosine"] >= 0.99  # 0.9976 here
    assert fp32["fidelity"]["sentence_embedding"]["cosine"] >= 0.9999
    assert int8["size_bytes"] < 0.3 * fp32["size_bytes"]
    # Whether INT8 pays off is the host's to measure (3.3× FP32's speed on an AVX-512 VNNI Xeon, 0.79× on an
    # AVX2-only EPYC, whose u8×s8 kernels lack VNNI): the decision follows the ratio it recorded.
    speedup = fp32["latency"]["p50_ms"] / int8["latency"]["p50_ms"]
    min_speedup = m["provenance"]["recipe"]["options"]["min_speedup"]
    embedding = int8["fidelity"]["sentence_embedding"]
    if min(embedding["cosine"], embedding["worst_channel_cosine"]) < 0.99:  # the budget judges every channel
        assert d["verdicts"]["int8"].startswith("rejected: ") and "below the 0.99 floor" in d["verdicts"]["int8"]
        assert m["precision"] in ("fp32", "int8-mixed"), d["verdicts"]  # a mix only within the floor:
        shipped = m["metrics"]["fidelity"]["sentence_embedding"]
        assert min(shipped["cosine"], shipped["worst_channel_cosine"]) >= 0.99
    elif speedup >= min_speedup:
        assert m["precision"] == "int8" and d["verdicts"]["int8"].startswith("shipped: "), d["verdicts"]
    else:
        assert m["precision"] == "fp32" and d["verdicts"]["int8"] == (
            f"rejected: {speedup:.2f}× float speed on this host (needs ≥ {min_speedup:g}×)"
        ), d["verdicts"]
    assert m["metrics"]["speedup_vs_float"] > 0  # vs ONNX Runtime FP32: a figure for benchmarks/, not a gate here


def test_cpu_openvino_quantizes_a_transformer_with_nncf_transformer_settings(minilm):
    target = load_target("cpu-openvino")
    plan = target.plan(onnx.load(str(minilm / "model.onnx")), target.recipe_type(**target.spec.recipe_defaults))
    config = plan.candidates["int8"].lowering.config
    assert (config.preset, config.model_type) == ("mixed", "transformer")  # the mask's Add/Mul stay float


def test_npu_openvino_compiles_static_int8_and_fp16(minilm, tmp_path, keypair):
    shape = {"shape": "input_ids:1x32,attention_mask:1x32", **SEARCH}
    edgeml.compile(str(minilm / "model.onnx"), "npu-openvino", key=keypair[0], out=tmp_path / "n", name="minilm",
                   options=shape)  # fmt: skip
    m = edgeml.verify(tmp_path / "n", keypair[1]).manifest
    candidates = m["decision"]["candidates"]
    assert candidates["int8"]["fidelity"]["sentence_embedding"]["cosine"] >= 0.99
    # FP16 flushes MiniLM's dead embedding channel (|x| ~ 1e-33) to 0: that is not a destroyed channel
    assert candidates["fp16"]["fidelity"]["sentence_embedding"]["worst_channel_cosine"] >= 0.99
    int8 = candidates["int8"]["fidelity"]["sentence_embedding"]
    if min(int8["cosine"], int8["worst_channel_cosine"]) >= 0.99:  # the budget judges every channel
        assert m["precision"] == "int8", m["decision"]["verdicts"]  # the smaller of two passing candidates
    else:
        assert m["precision"] in ("fp16", "int8-mixed"), m["decision"]["verdicts"]
        assert "below the 0.99 floor" in m["decision"]["verdicts"]["int8"]

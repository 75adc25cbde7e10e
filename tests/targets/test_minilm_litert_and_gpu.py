"""all-MiniLM-L6-v2 on the LiteRT and GPU targets: tflite-cpu from the PyTorch factory (litert-torch, then
ai-edge-quantizer's dynamic-range INT8), gpu-ort from the ONNX export (FP16, validated on the CPU EP here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeml
from edgeml.runtimes import open_session

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_tflite_cpu_compiles_minilm_from_its_pytorch_factory(minilm, tmp_path, keypair, monkeypatch):
    monkeypatch.chdir(ROOT)  # the factory examples.minilm.minilm:build is imported from the repository
    result = edgeml.compile(
        "examples.minilm.minilm:build", "tflite-cpu", key=keypair[0], out=tmp_path / "t", name="minilm",
        calib=minilm / "calib.npz", eval_data=minilm / "eval.npz", options={"precision": "int8-dynamic"},
        min_cosine=0.95,  # NOTE: the floor judges each of the 384 channels; this test is about the conversion
    )  # fmt: skip
    m = edgeml.verify(tmp_path / "t", keypair[1]).manifest
    assert m["precision"] == "int8-dynamic" and m["target"]["model_file"] == "model.tflite"
    (fidelity,) = m["decision"]["candidates"]["int8-dynamic"]["fidelity"].values()  # litert-torch names it "output"
    assert fidelity["cosine"] >= 0.99
    assert m["metrics"]["size_bytes"] < 0.3 * m["metrics"]["float_size_bytes"]  # 22 MiB vs 86 MiB
    feeds = dict(np.load(minilm / "eval.npz"))
    session = open_session("litert", tmp_path / "t" / "model.tflite")
    (out,) = session.run({k: v[:1] for k, v in feeds.items()}).values()
    assert out.shape == (1, 384) and abs(float(np.linalg.norm(out)) - 1.0) < 0.02  # L2-normalised embedding
    assert any("FULLY_CONNECTED" in n for n in result.notes)


def test_gpu_ort_compiles_minilm_to_fp16(minilm, tmp_path, keypair):
    edgeml.compile(str(minilm / "model.onnx"), "gpu-ort", key=keypair[0], out=tmp_path / "g", name="minilm",
                   options={"precision": "fp16"}, min_cosine=0.98)  # fmt: skip
    # NOTE: the floor judges each of the 384 channels; a near-dead one (peak 4e-4) reads 0.987 at SNR 60 dB in FP16
    m = edgeml.verify(tmp_path / "g", keypair[1]).manifest
    assert m["precision"] == "fp16"
    assert m["decision"]["candidates"]["fp16"]["fidelity"]["sentence_embedding"]["cosine"] >= 0.999
    assert m["metrics"]["size_bytes"] < 0.55 * m["metrics"]["float_size_bytes"]

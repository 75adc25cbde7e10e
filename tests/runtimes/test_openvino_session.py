"""The OpenVINO adapter: signature from the IR (dynamic dims named), named outputs it owns, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edgeml.errors import RuntimeUnavailableError
from edgeml.runtimes import open_session

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "model.onnx"


@pytest.fixture(scope="module")
def ir(tmp_path_factory):
    import openvino as ov

    path = tmp_path_factory.mktemp("ir") / "model.xml"
    ov.save_model(ov.convert_model(DIGITS), path, compress_to_fp16=False)
    return path


def test_signature_and_run_match_onnx_runtime(ir):
    session = open_session("openvino", ir, threads=1)
    assert session.runtime == "openvino" and session.providers == ("CPU",)
    assert session.signature.inputs[0].shape == ("input_dim0", 1, 8, 8)
    assert session.signature.inputs[0].batch_is_dynamic
    assert [(t.name, t.dtype) for t in session.signature.outputs] == [("logits", "float32")]
    x = np.random.default_rng(0).random((3, 1, 8, 8), np.float32)
    got = session.run({"input": x})["logits"]
    want = open_session("onnxruntime", DIGITS).run({"input": x})["logits"]
    np.testing.assert_allclose(got, want, atol=1e-4)  # FP32 on the CPU (bf16 is OpenVINO's default on some CPUs)


def test_outputs_are_not_overwritten_by_the_next_run(ir):
    session = open_session("openvino", ir)
    first = session.run({"input": np.zeros((1, 1, 8, 8), np.float32)})["logits"]
    kept = first.copy()
    session.run({"input": np.ones((1, 1, 8, 8), np.float32)})
    np.testing.assert_array_equal(first, kept)


def test_missing_device_and_missing_runtime(ir, monkeypatch):
    with pytest.raises(RuntimeUnavailableError, match="lacks device"):
        open_session("openvino", ir, providers=["NO_SUCH_DEVICE"])
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.delitem(sys.modules, "edgeml.runtimes.openvino_session", raising=False)
    with pytest.raises(RuntimeUnavailableError) as info:
        open_session("openvino", ir)
    assert "edgeml[runtime-openvino]" in info.value.hint

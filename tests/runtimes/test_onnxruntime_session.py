"""The ONNX Runtime adapter: signature from the model, named outputs, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeml.errors import RuntimeUnavailableError
from edgeml.runtimes import open_session

MODEL = Path(__file__).resolve().parents[2] / "examples" / "digits" / "model.onnx"


def test_signature_and_run():
    session = open_session("onnxruntime", MODEL, threads=1)
    assert session.signature.inputs[0].shape == ("batch", 1, 8, 8)
    out = session.run({"input": np.zeros((3, 1, 8, 8), np.float32)})
    assert list(out) == ["logits"] and out["logits"].shape == (3, 10)


def test_unknown_runtime_and_missing_provider():
    with pytest.raises(RuntimeUnavailableError, match="unknown runtime"):
        open_session("tensorrt-llm", MODEL)
    with pytest.raises(RuntimeUnavailableError, match="lacks execution provider"):
        open_session("onnxruntime", MODEL, providers=["NoSuchExecutionProvider"])

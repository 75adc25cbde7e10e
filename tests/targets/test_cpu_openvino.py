"""cpu-openvino end to end on the digits CNN: a verified artifact the OpenVINO adapter and the device agent's
self-test reproduce, byte-identical clean builds, a check that agrees with the lowering, clear missing-extra
errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import edgeml
from edgeml.calibration import Dataset
from edgeml.compiler.lowerings import ConvertToOpenVINO, QuantizeWithNNCF
from edgeml.compiler.passes.base import PassContext
from edgeml.device_agent.runtimes import open_session
from edgeml.device_agent.self_test import SelfTestPolicy, run_self_test
from edgeml.errors import TargetError
from edgeml.signature import ModelSignature
from edgeml.targets import load_target

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, keypair):
    out = tmp_path_factory.mktemp("cpu-openvino") / "digits"
    cache = tmp_path_factory.mktemp("cache")
    edgeml.compile(str(DIGITS / "model.onnx"), "cpu-openvino", key=keypair[0], out=out, cache_dir=cache)
    return out


def test_digits_compiles_to_a_verified_openvino_artifact(artifact, keypair):
    m = edgeml.verify(artifact, keypair[1]).manifest
    target = {k: m["target"][k] for k in ("id", "runtime", "runtime_min_version", "model_file")}
    assert target == {"id": "cpu-openvino", "runtime": "openvino", "runtime_min_version": "2026.4",
                      "model_file": "model.xml"}  # fmt: skip
    assert {f["path"] for f in m["files"]} == {"model.xml", "model.bin", "self_test.npz", "explain.json"}
    assert set(m["decision"]["candidates"]) == {"fp32", "int8"}
    assert all(c["runtime"] == "openvino" for c in m["decision"]["candidates"].values())
    assert m["metrics"]["accuracy_drop"] <= 1.0 and m["metrics"]["accuracy"] >= 95.0
    fp32, int8 = m["decision"]["candidates"]["fp32"], m["decision"]["candidates"]["int8"]
    assert fp32["fidelity"]["logits"]["cosine"] >= 0.9999  # a true FP32 IR, run in FP32
    assert int8["fidelity"]["logits"]["top1_agreement"] >= 0.98
    assert int8["size_bytes"] < 0.6 * fp32["size_bytes"]


def test_artifact_reproduces_its_self_test_through_openvino(artifact):
    manifest = json.loads((artifact / "manifest.json").read_text())
    session = open_session("openvino", artifact / "model.xml")
    with np.load(artifact / "self_test.npz") as z:
        got = session.run({"input": z["input/input"]})["logits"]
        np.testing.assert_allclose(got, z["expected/logits"], atol=manifest["self_test"]["atol"])
    report = run_self_test(artifact, manifest, SelfTestPolicy(latency_factor=None))
    assert report.outputs["logits"]["cosine"] >= 0.999


def test_two_clean_builds_are_byte_identical(tmp_path, keypair):
    for name in ("a", "b"):
        edgeml.compile(str(DIGITS / "model.onnx"), "cpu-openvino", key=keypair[0], out=tmp_path / name,
                       no_cache=True, options={"precision": "int8"})  # fmt: skip
    for file in ("model.xml", "model.bin", "self_test.npz"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file


def test_lowerings_are_deterministic_within_one_process(tmp_path):
    """OpenVINO numbers the nodes it creates from a process-wide counter; the lowerings rename them."""
    data = (DIGITS / "model.onnx").read_bytes()
    with np.load(DIGITS / "calib.npz") as z:
        calib = Dataset({"input": z["input"][:32]})
    ctx = PassContext(ModelSignature((), ()), calib, tmp_path)
    for lowering in (ConvertToOpenVINO(), QuantizeWithNNCF()):
        first, second = lowering(data, ctx), lowering(data, ctx)
        assert first.files == second.files, lowering.name
        assert b"Constant_" not in first.files["model.xml"]


def test_check_agrees_with_the_lowering(tmp_path):
    target = load_target("cpu-openvino")
    data = (DIGITS / "model.onnx").read_bytes()
    report = target.check(data, onnx.load_model_from_string(data), target.SPEC)
    assert report.ok and report.supported_nodes == report.nodes > 0

    bad = _model_with_unknown_op()
    report = target.check(bad, onnx.load_model_from_string(bad), target.SPEC)
    assert not report.ok and report.issues[0].rule == "openvino-convert" and "Frobnicate" in report.issues[0].detail
    with pytest.raises(Exception, match="Frobnicate"):
        ConvertToOpenVINO()(bad, PassContext(ModelSignature((), ()), None, tmp_path))


def test_compile_refuses_what_openvino_cannot_convert(tmp_path, keypair):
    model = tmp_path / "bad.onnx"
    model.write_bytes(_model_with_unknown_op())
    np.savez(tmp_path / "calib.npz", x=np.ones((4, 3), np.float32))
    with pytest.raises(TargetError, match=r"cpu-openvino cannot run this model.*openvino-convert.*Frobnicate"):
        edgeml.compile(str(model), "cpu-openvino", key=keypair[0], out=tmp_path / "out")


def test_missing_openvino_or_nncf_names_the_extra(tmp_path, monkeypatch):
    target = load_target("cpu-openvino")
    data = (DIGITS / "model.onnx").read_bytes()
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(TargetError) as info:
        calib = Dataset({"input": np.zeros((2, 1, 8, 8), np.float32)})
        QuantizeWithNNCF()(data, PassContext(ModelSignature((), ()), calib, tmp_path))
    assert "'nncf'" in info.value.message and info.value.hint == "pip install 'edgeml[compile]'"
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(TargetError) as info:
        target.check(data, onnx.load_model_from_string(data), target.SPEC)
    assert "'openvino'" in info.value.message and info.value.hint == "pip install 'edgeml[compile]'"


def _model_with_unknown_op() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()

"""cpu-openvino end to end on the digits CNN: a verified artifact the OpenVINO adapter and the device agent's
self-test reproduce, byte-identical clean builds, a check that agrees with the lowering, clear missing-extra
errors; the int8-mixed pieces: INT8 layers of an NNCF IR named by their ONNX nodes, and the lowering that keeps
named layers in float (the accuracy-aware contract itself: tests/compiler/test_accuracy_aware.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

import edgeml
from edgeml.calibration import Dataset
from edgeml.compiler.build_candidate import Built
from edgeml.compiler.lowerings import ConvertToOpenVINO, QuantizeWithNNCF, QuantizeWithNNCFConfig
from edgeml.compiler.passes.base import PassContext
from edgeml.device_agent.update.self_test import SelfTestPolicy, run_self_test
from edgeml.errors import PassContractError, TargetError
from edgeml.runtimes import open_session
from edgeml.signature import ModelSignature
from edgeml.targets import load_target
from edgeml.targets.recipe import make_recipe, parse_option_flags

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
    report = target.check(data, onnx.load_model_from_string(data), target.spec)
    assert report.ok and report.supported_nodes == report.nodes > 0

    bad = _model_with_unknown_op()
    report = target.check(bad, onnx.load_model_from_string(bad), target.spec)
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
        target.check(data, onnx.load_model_from_string(data), target.spec)
    assert "'openvino'" in info.value.message and info.value.hint == "pip install 'edgeml[compile]'"


@pytest.fixture(scope="module")
def nncf_irs(tmp_path_factory):
    """The digits CNN as all-INT8 NNCF IR files, and with its Gemm kept in float."""
    data = (DIGITS / "model.onnx").read_bytes()
    with np.load(DIGITS / "calib.npz") as z:
        ctx = PassContext(ModelSignature((), ()), Dataset({"input": z["input"][:32]}), tmp_path_factory.mktemp("nncf"))
    mixed = QuantizeWithNNCF(QuantizeWithNNCFConfig(ignored=("node_linear",)))(data, ctx)
    return data, QuantizeWithNNCF()(data, ctx), mixed


def test_int8_layers_of_an_nncf_ir_are_named_by_their_onnx_nodes(nncf_irs):
    target = load_target("cpu-openvino")
    data, int8, mixed = nncf_irs
    built = Built(None, int8.files, int8.model_file, int8.runtime, "")
    layers = {la.name: la.op for la in target.mixed.layers(built, data)}
    # NOTE: MaxPool is not a layer: NNCF quantizes through it, for the Conv after it
    assert layers == {"node_conv2d": "Conv", "node_conv2d_1": "Conv", "node_conv2d_2": "Conv",
                      "node_mean": "ReduceMean", "node_linear": "Gemm"}  # fmt: skip
    kept = Built(None, mixed.files, mixed.model_file, mixed.runtime, "")
    assert "node_linear" not in {la.name for la in target.mixed.layers(kept, data)}
    assert "1 layer(s) kept in float: node_linear" in mixed.notes[0]


def test_the_lowering_keeps_named_layers_in_float_and_refuses_unknown_names(nncf_irs, tmp_path):
    import openvino as ov

    data, _, mixed = nncf_irs
    model = ov.Core().read_model(mixed.files["model.xml"], mixed.files["model.bin"])
    matmul = next(op for op in model.get_ordered_ops() if op.get_type_name() == "MatMul")
    sources = [i.get_source_output().get_node() for i in matmul.inputs()]
    assert [s.get_type_name() for s in sources] == ["ReduceMean", "Constant"]  # float input, float weights
    assert sources[1].get_output_element_type(0).get_type_name() == "f32"
    ctx = PassContext(ModelSignature((), ()), Dataset({"input": np.zeros((2, 1, 8, 8), np.float32)}), tmp_path)
    with pytest.raises(PassContractError, match=r"\['node_nope'\] to keep in float match no OpenVINO op"):
        QuantizeWithNNCF(QuantizeWithNNCFConfig(ignored=("node_nope",)))(data, ctx)


def test_int8_mixed_is_listed_and_pinnable_by_flag():
    from edgeml.cli import main

    listed = json.loads(CliRunner().invoke(main, ["targets", "--json"]).output)
    for target_id in ("cpu-openvino", "npu-openvino"):
        (spec,) = [t for t in listed if t["id"] == target_id]
        assert spec["precisions"][-2:] == ["int8", "int8-mixed"], target_id
        options = json.loads(CliRunner().invoke(main, ["targets", "--options", target_id, "--json"]).output)
        (precision,) = [o for o in options if o["name"] == "precision"]
        assert "int8-mixed" in precision["choices"]
    target = load_target("cpu-openvino")
    recipe = make_recipe(target.recipe_type, target.spec.id, target.spec.recipe_defaults,
                         parse_option_flags(["precision=int8-mixed"]))  # fmt: skip
    plan = target.plan(onnx.load(DIGITS / "model.onnx"), recipe)
    assert list(plan.candidates) == [target.mixed.base] == ["int8"]  # the search's starting point
    mix = target.mixed.plan(plan.candidates["int8"], ("node_linear",))
    assert mix.lowering.config.ignored == ("node_linear",) and plan.candidates["int8"].lowering.config.ignored == ()


def _model_with_unknown_op() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()

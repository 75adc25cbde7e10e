"""Control flow (`If`/`Loop` bodies): the graph kind and the candidates come from the graph as it runs, bodies
included; OpenVINO's outputs keep the model's names; the pre-flight check names each node OpenVINO cannot
convert, with why and what to do (tests/control_flow_models.py; silero-vad's own ONNX where it is installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeml
from edgeml.errors import TargetError
from edgeml.runtimes import open_session
from edgeml.targets import load_target
from edgeml.targets.graph_kind import graph_kind, layers_in_bodies
from edgeml.targets.recipe import make_recipe

HERE = Path(__file__).resolve().parent


def _models():
    spec = importlib.util.spec_from_file_location("_edgeml_tests_control_flow", HERE.parent / "control_flow_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


models = _models()


def _plan(target_id: str, model, precision: str = "auto"):
    target = load_target(target_id)
    recipe = make_recipe(target.recipe_type, target_id, target.spec.recipe_defaults, {"precision": precision})
    return target.plan(model, recipe)


def test_the_graph_kind_reads_inside_if_bodies(tmp_path):
    model = onnx.load(models.conv_in_if(tmp_path / "m.onnx"))
    assert {n.op_type for n in model.graph.node} == {"Equal", "If"}  # the top level alone reads "other"
    assert graph_kind(model) == "conv"
    assert layers_in_bodies(model) == ("If_0",)


def test_a_constant_branch_input_is_inlined_and_its_layers_reach_the_quantizer(tmp_path):
    source = models.conv_in_if(tmp_path / "m.onnx")
    fixed = onnx.load(models.with_constant(tmp_path / "fixed.onnx", source, "sr", np.array(16000, np.int64)))
    assert graph_kind(fixed) == "conv" and layers_in_bodies(fixed) == ()
    assert "int8-static" in _plan("cpu-ort", fixed).candidates


def test_cpu_ort_says_why_int8_static_is_not_tried_on_layers_inside_an_if(tmp_path):
    model = onnx.load(models.conv_in_if(tmp_path / "m.onnx"))
    plan = _plan("cpu-ort", model)
    assert list(plan.candidates) == ["fp32"]
    assert "graph kind: conv" in plan.notes
    (note,) = [n for n in plan.notes if n.startswith("int8-static not tried")]
    assert "If_0" in note and "constant" in note
    with pytest.raises(TargetError, match=r"int8-static cannot quantize this model on cpu-ort.*If_0"):
        _plan("cpu-ort", model, "int8-static")


def test_openvino_targets_say_why_nncf_int8_is_not_tried_on_layers_inside_an_if(tmp_path):
    """NNCF's graph does not see into If bodies (it raised an internal error naming the body's node): the plan
    leaves int8 out with the reason in auto mode, and refuses a pinned int8 with the fix."""
    model = onnx.load(models.conv_in_if(tmp_path / "m.onnx"))
    plan = _plan("cpu-openvino", model)
    assert list(plan.candidates) == ["fp32"]
    (note,) = [n for n in plan.notes if n.startswith("int8 not tried")]
    assert "If_0" in note and "constant" in note
    with pytest.raises(TargetError, match=r"int8 cannot be built with NNCF for this model.*If_0"):
        _plan("cpu-openvino", model, "int8")
    fixed = onnx.load(
        models.with_constant(tmp_path / "fixed.onnx", tmp_path / "m.onnx", "sr", np.array(16000, np.int64))
    )
    assert "int8" in _plan("cpu-openvino", fixed).candidates  # the branch inlined: NNCF sees every layer


def test_openvino_outputs_keep_the_model_names(tmp_path):
    import openvino as ov

    source = models.internal_output_name(tmp_path / "m.onnx")
    compiled = ov.Core().compile_model(ov.convert_model(source), "CPU")
    assert compiled.outputs[0].get_names() == {"F0_then_out", "output"}  # the trap: get_any_name() is the first
    ir = tmp_path / "model.xml"
    ov.save_model(ov.convert_model(source), ir, compress_to_fp16=False)
    session = open_session("openvino", ir)
    assert session.signature.output_names == ("output",)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(session.run({"x": x})["output"], np.maximum(x, 0).mean(1, keepdims=True), rtol=1e-5)


def test_compile_for_cpu_openvino_evaluates_such_a_model(tmp_path, keypair):
    """Was `KeyError: 'output'` in evaluate.py, even with fp32 pinned."""
    source = models.internal_output_name(tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32))
    result = edgeml.compile(str(source), "cpu-openvino", key=keypair[0], out=tmp_path / "out",
                            options={"precision": "fp32"}, no_cache=True)  # fmt: skip
    assert result.decision.chosen == "fp32"
    assert result.manifest["metrics"]["fidelity"]["output"]["cosine"] > 0.9999


def test_the_check_names_each_node_openvino_cannot_convert(tmp_path):
    data = models.rank_changing_if(tmp_path / "m.onnx").read_bytes()
    session = open_session("onnxruntime", tmp_path / "m.onnx")  # ONNX Runtime runs it
    assert session.run({"x": np.ones((2, 1, 16), np.float32)})["output"].shape == (2, 2, 16)
    target = load_target("cpu-openvino")
    report = target.check(data, onnx.load_model_from_string(data), target.spec)
    assert not report.ok
    (issue,) = report.issues
    assert (issue.node, issue.op, issue.rule) == ("encoder/Conv", "Conv", "openvino-convert")
    assert "rank" in issue.detail and "control flow: If_0" in issue.detail and "cpu-ort" in issue.fix
    assert report.nodes == 8 and report.supported_nodes == 7  # every ONNX node, the If's two bodies included


def test_compile_refuses_it_with_the_node_and_the_fix(tmp_path, keypair):
    source = models.rank_changing_if(tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", x=np.ones((4, 1, 16), np.float32))
    with pytest.raises(TargetError) as refused:
        edgeml.compile(str(source), "cpu-openvino", key=keypair[0], out=tmp_path / "out")
    assert "encoder/Conv [Conv] breaks openvino-convert" in refused.value.message
    assert "[]" not in refused.value.message and "cpu-ort" in str(refused.value.hint)


@pytest.fixture(scope="module")
def silero():
    pytest.importorskip("silero_vad")
    import silero_vad

    return Path(silero_vad.__file__).parent / "data"


def test_silero_vad_reads_as_conv_and_names_its_openvino_failure(silero):
    data = (silero / "silero_vad.onnx").read_bytes()
    model = onnx.load_model_from_string(data)
    assert graph_kind(model) == "conv" and layers_in_bodies(model) == ("If_0",)
    target = load_target("cpu-openvino")
    report = target.check(data, model, target.spec)
    assert {i.op for i in report.issues} >= {"Conv"} and all(i.node != "(model)" for i in report.issues)
    assert any("If_0.then_branch" in i.detail for i in report.issues)


def test_silero_vad_openvino_export_keeps_its_output_names(silero, tmp_path):
    import openvino as ov

    ir = tmp_path / "model.xml"
    ov.save_model(ov.convert_model(silero / "silero_vad_openvino_16k.onnx"), ir, compress_to_fp16=False)
    session = open_session("openvino", ir)
    assert session.signature.output_names == ("output", "stateN")
    out = session.run({"input": np.zeros((1, 576), np.float32), "state": np.zeros((2, 1, 128), np.float32)})
    assert set(out) == {"output", "stateN"} and out["output"].shape == (1, 1)

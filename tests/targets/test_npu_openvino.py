"""npu-openvino on the digits CNN: the dynamic batch is fixed by a `shape` option or, without one, by the
calibration data's shape (the check, which has no data, names the dim and the option); then
a verified static-shape artifact, validated on the CPU plugin, and a manifest that says the NPU was absent;
pinned int8-mixed keeps the fewest layers in FP16 that meet the budget, as on cpu-openvino."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeml
from edgeml.compiler.passes.base import PassContext
from edgeml.device_agent.update.self_test import SelfTestPolicy, run_self_test
from edgeml.errors import TargetError
from edgeml.runtimes import open_session
from edgeml.signature import ModelSignature
from edgeml.targets import load_target

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
SHAPE = {"shape": "input:1x1x8x8"}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, keypair):
    out = tmp_path_factory.mktemp("npu-openvino") / "digits"
    cache = tmp_path_factory.mktemp("cache")
    result = edgeml.compile(
        str(DIGITS / "model.onnx"), "npu-openvino", key=keypair[0], out=out, cache_dir=cache, options=SHAPE
    )
    return out, result


@pytest.fixture(scope="module")
def npu():
    return load_target("npu-openvino")


def test_without_a_shape_option_the_calibration_data_fixes_the_shapes(tmp_path, keypair):
    result = edgeml.compile(
        str(DIGITS / "model.onnx"), "npu-openvino", key=keypair[0], out=tmp_path / "out", options={"precision": "fp16"}
    )
    note = "npu-openvino: static input shapes taken from the calibration data (input:1x1x8x8)"
    assert any(n.startswith(note) for n in result.notes) and "static shapes: input:1x1x8x8" in result.notes
    assert result.manifest["provenance"]["recipe"]["options"]["shape"] == "input:1x1x8x8"  # --recipe reproduces it
    assert b'<data shape="1,1,8,8" element_type="f32" />' in (tmp_path / "out" / "model.xml").read_bytes()


def test_the_check_names_the_dynamic_dims_it_has_no_data_for(npu):
    data = (DIGITS / "model.onnx").read_bytes()
    report = npu.check(data, onnx.load_model_from_string(data), npu.spec, npu.recipe_type(**npu.spec.recipe_defaults))
    (issue,) = report.issues
    assert "input 'input' has dynamic dim 0 ('batch')" in issue.detail and "static shapes only" in issue.detail
    assert issue.fix.startswith("-O shape=input:1x1x8x8")


def test_with_a_shape_it_compiles_a_static_fp16_or_int8_ir(artifact, keypair):
    out, result = artifact
    m = edgeml.verify(out, keypair[1]).manifest
    assert m["target"]["id"] == "npu-openvino" and m["target"]["runtime"] == "openvino"
    assert m["target"]["static_shapes"] is True and m["target"]["model_file"] == "model.xml"
    assert set(m["decision"]["candidates"]) == {"fp16", "int8"} and m["precision"] in ("fp16", "int8")
    assert m["decision"]["candidates"]["fp16"]["fidelity"]["logits"]["cosine"] >= 0.999
    assert m["metrics"]["accuracy_drop"] <= 1.0
    assert "static shapes: input:1x1x8x8" in result.notes
    session = open_session("openvino", out / "model.xml")
    assert session.signature.inputs[0].shape == (1, 1, 8, 8)


def test_manifest_says_the_npu_was_absent_and_the_cpu_plugin_validated_it(artifact):
    out, result = artifact
    m = json.loads((out / "manifest.json").read_text())
    notes = [n for p in m["provenance"]["passes"] for n in p["notes"]]
    assert any("NPU was not present at compile time" in n and "CPU plugin" in n for n in notes), notes
    assert any("no NPU on this host" in n for n in result.notes)


def test_artifact_reproduces_its_self_test_one_sample_at_a_time(artifact):
    out, _ = artifact
    m = json.loads((out / "manifest.json").read_text())
    session = open_session("openvino", out / "model.xml")
    with np.load(out / "self_test.npz") as z:
        inputs, expected = z["input/input"], z["expected/logits"]
    got = np.concatenate([session.run({"input": x[None]})["logits"] for x in inputs])
    np.testing.assert_allclose(got, expected, atol=m["self_test"]["atol"])


def test_device_agent_self_test_runs_a_static_batch_artifact(artifact):
    out, _ = artifact
    m = json.loads((out / "manifest.json").read_text())
    run_self_test(out, m, SelfTestPolicy(latency_factor=None))


def test_pinned_int8_mixed_keeps_the_fewest_layers_in_float_for_a_static_ir(tmp_path, keypair):
    result = edgeml.compile(
        str(DIGITS / "model.onnx"), "npu-openvino", key=keypair[0], out=tmp_path / "out",
        eval_data=DIGITS / "calib.npz", min_cosine=0.9999, options=SHAPE | {"precision": "int8-mixed"},
    )  # fmt: skip
    m = edgeml.verify(tmp_path / "out", keypair[1]).manifest
    assert m["precision"] == "int8-mixed" and set(m["decision"]["candidates"]) == {"int8-mixed"}
    keep = result.decision.mixed_precision["keep_float"]  # which layers: this CPU's numerics, not asserted
    assert keep and len(keep) < len(result.decision.mixed_precision["ranking"])
    fidelity = m["metrics"]["fidelity"]["logits"]
    assert min(fidelity["cosine"], fidelity["worst_channel_cosine"]) >= 0.9999  # the floor, on every channel
    assert b'<data shape="1,1,8,8" element_type="f32" />' in (tmp_path / "out" / "model.xml").read_bytes()
    (nncf,) = [p for p in m["provenance"]["passes"] if p["name"] == "quantize-with-nncf"]
    assert nncf["config"]["ignored"] == keep and nncf["config"]["fp16_weights"]


def test_check_verdict_matches_what_the_plan_and_lowering_do(npu, tmp_path):
    data = (DIGITS / "model.onnx").read_bytes()
    proto = onnx.load_model_from_string(data)
    unset = npu.recipe_type(**npu.spec.recipe_defaults)
    report = npu.check(data, proto, npu.spec, unset)
    assert [(i.node, i.rule) for i in report.issues] == [("input", "static-shapes")]
    with pytest.raises(TargetError, match=re.escape(report.issues[0].detail)):
        npu.plan(proto, unset)

    fixed = npu.recipe_type(**(npu.spec.recipe_defaults | SHAPE))
    assert npu.check(data, proto, npu.spec, fixed).ok
    plan = npu.plan(proto, fixed)
    assert list(plan.candidates) == ["fp16", "int8"]
    lowered = plan.candidates["fp16"].lowering(data, PassContext(ModelSignature((), ()), None, tmp_path))
    assert b'<data shape="1,1,8,8" element_type="f32" />' in lowered.files["model.xml"]


@pytest.mark.parametrize(
    ("shape", "complaint"),
    [
        ("input:1x1x8", "does not fit input: float32[batch, 1, 8, 8]"),
        ("input:1x3x8x8", "does not fit"),
        ("pixels:1x1x8x8", "names input(s) pixels that the model does not have"),
        ("input=1x1x8x8", "is not input:DIMxDIM"),
        ("input:0x1x8x8", "positive sizes"),
    ],
)
def test_a_bad_shape_option_is_refused_with_the_reason(npu, shape, complaint):
    data = (DIGITS / "model.onnx").read_bytes()
    recipe = npu.recipe_type(**(npu.spec.recipe_defaults | {"shape": shape}))
    with pytest.raises(TargetError, match=re.escape(complaint)):
        npu.check(data, onnx.load_model_from_string(data), npu.spec, recipe)

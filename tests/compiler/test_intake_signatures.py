"""Intake takes real signatures: negative/empty dims are dynamic, scalar inputs are constants, a state whose
batch is axis 1 is fed along axis 1, non-tensor `forward` arguments come from the data or a spec, and every
refusal is an EdgemlError naming the input and the fix."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import edgeml
from edgeml.calibration import read_dataset
from edgeml.calibration.input_layout import parse_input_flags, parse_input_specs
from edgeml.cli import main
from edgeml.compiler.check_model import check_model
from edgeml.compiler.content_cache import ContentCache
from edgeml.compiler.intake import identify_source, take_in
from edgeml.compiler.progress import NullProgress
from edgeml.device_agent.update.self_test import SelfTestPolicy, run_self_test
from edgeml.errors import CalibrationError, EdgemlError, ModelIntakeError

sys.path.insert(0, str(Path(__file__).parent))
from signature_models import negative_dims_cnn, reference_outputs, stateful_data, stateful_model


@pytest.fixture
def stateful(tmp_path):
    return stateful_model(tmp_path / "stateful.onnx"), stateful_data(tmp_path / "calib.npz")


def _intake(model: Path):
    return take_in(identify_source(str(model)), ContentCache(None), NullProgress())


def test_negative_and_empty_dims_are_dynamic(tmp_path):
    model = negative_dims_cnn(tmp_path / "ocr_cls.onnx")
    intake = _intake(model)
    shape = intake.signature.input("x").shape
    assert isinstance(shape[0], str) and shape[1] == 3 and all(isinstance(d, str) for d in shape[2:])
    exported = onnx.load_model_from_string(intake.onnx.data).graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for i, d in enumerate(exported) if i != 1)  # named in the model every runtime reads
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 3, 48, 192), np.float32))
    data = read_dataset(tmp_path / "c.npz", intake.signature)
    assert len(data) == 4 and next(data.batches(2))["x"].shape == (2, 3, 48, 192)


def test_state_on_axis_1_and_scalar_rate_are_inferred(stateful):
    model, calib = stateful
    data = read_dataset(calib, _intake(model).signature)
    layouts = {layout.name: layout for layout in data.layouts}
    assert layouts["x"].batch_axis == 0
    assert layouts["state"].batch_axis == 1 and "axis 1" in layouts["state"].how
    assert layouts["sr"].kind == "constant" and layouts["sr"].constant.tolist() == 16000
    assert len(data) == 12
    feed = next(data.batches(1))
    assert feed["x"].shape == (1, 8) and feed["state"].shape == (2, 1, 4) and feed["sr"].shape == ()


def test_feeds_reproduce_the_model_on_its_own_layout(stateful):
    """Batched along each input's own axis, the model computes what it computes on the whole arrays."""
    model, calib = stateful
    data = read_dataset(calib, _intake(model).signature)
    raw = np.load(calib)
    want = reference_outputs(raw["x"], raw["state"], 16000, model)
    feeds = [data.feed(slice(i, i + 5)) for i in range(0, 12, 5)]
    got = [reference_outputs(f["x"], f["state"], int(f["sr"]), model) for f in feeds]
    assert [f["state"].shape[1] for f in feeds] == [5, 5, 2]
    np.testing.assert_allclose(np.concatenate([g["out"] for g in got]), want["out"], rtol=1e-5)
    np.testing.assert_allclose(np.concatenate([g["stateN"] for g in got], axis=1), want["stateN"], rtol=1e-5)
    batches = list(data.batches(5))  # NOTE: one sample each, so outputs joined on axis 0 line up in any layout
    assert len(batches) == 12 and {b["state"].shape for b in batches} == {(2, 1, 4)}


def test_ambiguous_axis_is_refused_with_the_fix_and_a_spec_settles_it(tmp_path):
    model = stateful_model(tmp_path / "m.onnx", state_dims=("layers", "b", 4))
    calib = stateful_data(tmp_path / "c.npz", n=2)  # state [2, 2, 4]: axis 0 or 1?
    signature = _intake(model).signature
    with pytest.raises(CalibrationError, match=r"input 'state': cannot tell which axis.*") as info:
        read_dataset(calib, signature)
    assert "batch_axis" in info.value.hint
    data = read_dataset(calib, signature, input_specs=parse_input_specs({"state": {"batch_axis": 1}}, "test"))
    assert {layout.name: layout.how for layout in data.layouts}["state"] == "given"


def test_spec_carried_in_the_npz(tmp_path):
    model = stateful_model(tmp_path / "m.onnx", state_dims=("layers", "b", 4))
    calib = stateful_data(tmp_path / "c.npz", n=2, edgeml_inputs=json.dumps({"state": {"batch_axis": 1}}))
    data = read_dataset(calib, _intake(model).signature)
    assert {layout.name: layout.batch_axis for layout in data.layouts}["state"] == 1
    assert "edgeml_inputs" not in data.inputs


def test_constant_from_a_spec_when_the_data_lacks_it(tmp_path, stateful):
    model, _ = stateful
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "c.npz", x=rng.standard_normal((3, 8)).astype(np.float32), state=np.zeros((2, 3, 4), "f4"))
    signature = _intake(model).signature
    with pytest.raises(CalibrationError, match=r"no array for input\(s\) sr"):
        read_dataset(tmp_path / "c.npz", signature)
    specs = parse_input_specs(parse_input_flags(["sr:constant=8000"]), "flags")
    data = read_dataset(tmp_path / "c.npz", signature, input_specs=specs)
    assert data.constants["sr"].dtype == np.int64 and int(data.constants["sr"]) == 8000


def test_scalar_given_per_sample_is_fed_one_at_a_time(stateful, tmp_path):
    model, _ = stateful
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "c.npz", x=rng.standard_normal((3, 8)).astype(np.float32),
        state=np.zeros((2, 3, 4), "f4"), sr=np.array([8000, 16000, 16000]),
    )  # fmt: skip
    data = read_dataset(tmp_path / "c.npz", _intake(model).signature)
    feeds = list(data.batches(64))
    assert len(feeds) == 3 and feeds[1]["sr"].shape == () and int(feeds[1]["sr"]) == 16000


def test_scalar_misfit_names_the_input_and_says_what_a_scalar_takes(stateful, tmp_path):
    model, _ = stateful
    np.savez(
        tmp_path / "c.npz", x=np.zeros((3, 8), "f4"), state=np.zeros((2, 3, 4), "f4"), sr=np.zeros((3, 2), np.int64)
    )
    with pytest.raises(CalibrationError, match=r"input 'sr': samples of shape \[2\]") as info:
        read_dataset(tmp_path / "c.npz", _intake(model).signature)
    assert "shape []" not in str(info.value.message).split("do not fit")[0]  # never "[] … does not fit []"
    assert "scalar" in info.value.hint


@pytest.mark.parametrize(
    ("specs", "match"),
    [
        ({"state": {"batch_axis": 5}}, r"input 'state' has 3 axes .* batch_axis 5 does not exist"),
        ({"nosuch": {"batch_axis": 1}}, r"input spec\(s\) for nosuch, which the model does not have"),
        ({"state": {"axis": 1}}, r"input 'state' takes batch_axis and/or constant"),
        ({"sr": {"batch_axis": 0}}, r"input 'sr' is a scalar \(sr: int64\[\]\) and has no batch axis 0"),
    ],
)
def test_bad_specs_are_refused_by_name(stateful, specs, match):
    model, calib = stateful
    with pytest.raises(CalibrationError, match=match):
        read_dataset(calib, _intake(model).signature, input_specs=parse_input_specs(specs, "test"))


def test_bad_input_flag():
    with pytest.raises(CalibrationError, match="is not NAME:batch_axis=N"):
        parse_input_flags(["state=1"])


def test_check_prints_what_it_inferred(stateful):
    model, calib = stateful
    result = CliRunner().invoke(main, ["check", str(model), "--calib", str(calib), "--json"])
    assert result.exit_code == 0, result.output
    inputs = {i["name"]: i for i in json.loads(result.output)["inputs"]}
    assert inputs["state"]["batch_axis"] == 1 and inputs["state"]["dynamic_axes"] == [1]
    assert inputs["sr"]["kind"] == "constant" and inputs["sr"]["constant"] == 16000
    assert inputs["x"] == inputs["x"] | {"dtype": "float32", "shape": ["batch", 8], "batch_axis": 0}
    text = CliRunner().invoke(main, ["check", str(model)], terminal_width=200).output
    assert "batch axis 1" in text and "constant" in text and "state" in text


def test_check_without_data_says_what_the_shapes_say(tmp_path):
    report = check_model(str(negative_dims_cnn(tmp_path / "m.onnx")), "cpu-ort")
    (x,) = report.inputs
    assert x["batch_axis"] == 0 and x["dynamic_axes"] == [0, 2, 3]


def test_stateful_model_compiles_and_self_tests(stateful, tmp_path, keypair):
    model, calib = stateful
    result = edgeml.compile(str(model), "cpu-ort", calib=calib, key=keypair[0], out=tmp_path / "out")
    with np.load(tmp_path / "out" / "self_test.npz") as z:
        assert z["input/state"].shape == (2, 1, 4) and z["input/sr"].shape == ()
    report = run_self_test(tmp_path / "out", result.manifest, SelfTestPolicy())
    assert set(report.outputs) == {"out", "stateN"}


def test_recipe_inputs_reach_the_manifest(tmp_path, keypair):
    model = stateful_model(tmp_path / "m.onnx", state_dims=("layers", "b", 4))
    calib = stateful_data(tmp_path / "c.npz", n=2)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('[options]\nprecision = "fp32"\n[inputs]\nstate = {batch_axis = 1}\n')
    result = edgeml.compile(str(model), "cpu-ort", calib=calib, key=keypair[0], out=tmp_path / "o", recipe_file=recipe)
    assert result.manifest["provenance"]["recipe"]["inputs"] == {"state": {"batch_axis": 1}}


_SCRIPTED = """
import torch


class WithRate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor, sr: int) -> torch.Tensor:
        return self.lin(x) * (1.0 if sr == 16000 else 2.0)


class ScalarTensor(torch.nn.Module):
    def forward(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        return x * gain


def with_rate():
    torch.manual_seed(0)
    return WithRate(), (torch.randn(1, 16), 16000)


def with_rate_no_sr():
    torch.manual_seed(0)
    return WithRate(), (torch.randn(1, 16),)


def scalar_tensor():
    return ScalarTensor(), (torch.randn(1, 16), torch.tensor(2.0))
"""


@pytest.fixture
def scripted(tmp_path, monkeypatch):
    import torch

    (tmp_path / "rate_models.py").write_text(_SCRIPTED)
    monkeypatch.syspath_prepend(str(tmp_path))
    import rate_models

    path = tmp_path / "with_rate.pt"
    torch.jit.save(torch.jit.script(rate_models.WithRate().eval()), path)
    x = np.random.default_rng(0).standard_normal((6, 16)).astype(np.float32)
    np.savez(tmp_path / "with_sr.npz", x=x, sr=np.int64(16000))
    np.savez(tmp_path / "no_sr.npz", x=x)
    return path


def test_torchscript_int_argument_comes_from_the_data(scripted):
    report = check_model(str(scripted), "cpu-ort", calib=str(scripted.parent / "with_sr.npz"))
    inputs = {i["name"]: i for i in report.inputs}
    assert inputs["sr"]["kind"] == "constant" and inputs["x"]["batch_axis"] == 0


def test_torchscript_int_argument_from_a_spec(scripted):
    report = check_model(
        str(scripted), "cpu-ort", calib=str(scripted.parent / "no_sr.npz"), inputs={"sr": {"constant": 16000}}
    )
    assert {i["name"]: i["constant"] for i in report.inputs}["sr"] == 16000


def test_torchscript_missing_int_argument_is_named(scripted):
    with pytest.raises(ModelIntakeError, match=r"forward\(\) takes sr: int, and the data has no 'sr'") as info:
        check_model(str(scripted), "cpu-ort", calib=str(scripted.parent / "no_sr.npz"))
    assert "--input sr:constant=" in info.value.hint


@pytest.mark.slow  # the first torch.export of a session takes ~20 s on a loaded 2-core host
def test_factory_int_argument_is_baked_in(scripted):
    intake = _intake_factory("rate_models:with_rate")
    assert intake.signature.input_names == ("x",)


@pytest.mark.slow
def test_factory_int_argument_from_a_spec(scripted):
    from edgeml.calibration.example_inputs import example_inputs

    specs = parse_input_specs({"sr": {"constant": 16000}}, "test")
    calib = str(scripted.parent / "no_sr.npz")
    intake = take_in(
        identify_source("rate_models:with_rate_no_sr"), ContentCache(None), NullProgress(),
        lambda: example_inputs(calib, specs),
    )  # fmt: skip
    assert intake.signature.input_names == ("x",)


@pytest.mark.slow
def test_factory_missing_int_argument_is_named(scripted):
    with pytest.raises(ModelIntakeError, match=r"raised TypeError on its example inputs \(x=float32\[1, 16\]\)"):
        _intake_factory("rate_models:with_rate_no_sr")


@pytest.mark.slow
def test_export_marks_no_axis_on_a_scalar_tensor(scripted):
    intake = _intake_factory("rate_models:scalar_tensor")
    assert intake.signature.input("gain").shape == ()
    assert isinstance(intake.signature.input("x").shape[0], str)


def _intake_factory(spec: str):
    return take_in(identify_source(spec), ContentCache(None), NullProgress())


def test_every_intake_refusal_is_an_edgeml_error(stateful, tmp_path):
    model, _ = stateful
    np.savez(tmp_path / "c.npz", x=np.zeros((3, 8), "f4"), state=np.zeros((2, 4, 4), "f4"), sr=np.int64(1))
    with pytest.raises(EdgemlError, match="input 'state'"):
        read_dataset(tmp_path / "c.npz", _intake(model).signature)


def test_one_value_for_a_tensor_input_is_named(stateful, tmp_path):
    model, _ = stateful
    np.savez(tmp_path / "c.npz", x=np.float32(1.0), state=np.zeros((2, 3, 4), "f4"), sr=np.int64(1))
    with pytest.raises(CalibrationError, match=r"input 'x': one value \(1.0\) for an input of shape \['batch', 8\]"):
        read_dataset(tmp_path / "c.npz", _intake(model).signature)


def test_constant_that_is_not_a_number_is_named(stateful):
    model, calib = stateful
    specs = parse_input_specs({"sr": {"constant": ["a"]}}, "test")
    with pytest.raises(CalibrationError, match=r"input 'sr': constant \['a'\] is not a int64 value"):
        read_dataset(calib, _intake(model).signature, input_specs=specs)


@pytest.mark.slow
def test_stateful_model_on_a_static_shape_npu(stateful, tmp_path, keypair):
    """npu-openvino fixes shapes from the data on each input's own batch axis, and its per-layer probe feeds
    one sample at a time without splitting the state along axis 0."""
    model, calib = stateful
    result = edgeml.compile(str(model), "npu-openvino", calib=calib, key=keypair[0], out=tmp_path / "out")
    assert "x:1x8,state:2x1x4" in " ".join(result.notes)


def test_layer_probe_takes_tensors_whose_batch_is_not_axis_0(tmp_path):
    """A CRNN-style sequence-first intermediate [W, N, C] over chunks of 32 + 8 samples (the OCR recogniser's
    `all the input array dimensions except for the concatenation axis must match` traceback)."""
    from signature_models import sequence_first_model

    from edgeml.compiler.layer_numerics import LayerProbe

    model = sequence_first_model(tmp_path / "seq.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).standard_normal((40, 4, 6)).astype(np.float32))
    intake = _intake(model)
    data = read_dataset(tmp_path / "c.npz", intake.signature)
    probe = LayerProbe(intake.onnx.data, data, intake.signature)
    assert probe.float_tensor("y").shape == (40, 4, 6) and probe.float_tensor("m").size == 40 * 4 * 6

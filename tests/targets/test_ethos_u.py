"""ethos-u55-128 / ethos-u65-256 through the real toolchain (litert-torch PT2E + Vela): digits compiles with 100%
NPU offload and Vela's report in a verified artifact; the pre-flight check agrees with Vela (on digits and on a
model with a fallback); require_full_offload, a float TFLite and a missing toolchain are refused with reasons."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import edgeml
from edgeml.compiler.lowerings.tflite_operators import tflite_operators
from edgeml.errors import TargetError
from edgeml.targets import load_target
from edgeml.targets.ethos_u.placement import predict_placement
from edgeml.targets.recipe import make_recipe

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
FILES = {"model_vela.tflite", "reference_int8.tflite", "vela_report.json", "self_test.npz", "explain.json"}


def _compile(source: str, target: str, out: Path, key: Path, cache: Path, **options):
    return edgeml.compile(source, target, key=key, out=out, cache_dir=cache, calib=DIGITS / "calib.npz",
                          eval_data=DIGITS / "eval.npz", options=options)  # fmt: skip


@pytest.fixture(scope="module")
def u55(tmp_path_factory, keypair):
    out = tmp_path_factory.mktemp("u55") / "digits"
    return _compile(str(DIGITS / "model.pt2"), "ethos-u55-128", out, keypair[0], tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def u65(tmp_path_factory, keypair):
    out = tmp_path_factory.mktemp("u65") / "digits"
    return _compile("examples.digits.digits_cnn:build", "ethos-u65-256", out, keypair[0], tmp_path_factory.mktemp("c"))


@pytest.fixture(scope="module")
def sine_pt2(tmp_path_factory) -> Path:
    """A tiny CNN with a sine: no NPU runs SIN, so Vela puts it (and the MEAN of its float output) on the CPU.
    (Until issue 12 this was a LeakyReLU, which PT2E left in float; edgeml now quantizes it for the NPU.)"""
    import torch
    from torch import nn

    class Sine(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            return self.fc(torch.sin(self.conv(x)).mean((2, 3)))

    torch.manual_seed(0)
    batch = {0: torch.export.Dim("batch")}
    program = torch.export.export(Sine().eval(), (torch.rand(2, 1, 8, 8),), dynamic_shapes=(batch,))
    path = tmp_path_factory.mktemp("sine") / "sine.pt2"
    torch.export.save(program, path)
    return path


@pytest.mark.parametrize("which", ["u55", "u65"])
def test_digits_compiles_with_full_npu_offload_and_vela_report(which, request, keypair):
    result = request.getfixturevalue(which)
    m = edgeml.verify(result.out, keypair[1]).manifest
    report = json.loads((result.out / "vela_report.json").read_text())
    assert {f["path"] for f in m["files"]} == FILES
    assert report["accelerator"] == m["target"]["id"] == m["target"]["device"]
    assert report["operators"]["npu_percent"] == 100.0 and report["operators"]["cpu"] == 0 and report["fallback"] == []
    assert {op.type for op in tflite_operators((result.out / "model_vela.tflite").read_bytes())} == {"ethos-u"}
    assert report["cycles"]["total"] > 0 and report["inference_time_ms"] > 0 and report["macs"] > 500_000
    assert report["memory_kib"]["sram"] > 0 and report["weights_bytes"]["npu_encoded"] > 0
    # the host runs exactly the INT8 model Vela compiled, and says so
    reference = (result.out / "reference_int8.tflite").read_bytes()
    assert report["files"]["cpu_reference"]["sha256"] == hashlib.sha256(reference).hexdigest()
    assert m["target"]["model_file"] == "model_vela.tflite" and m["target"]["runtime"] == "litert"
    assert m["metrics"]["measured_on"]["model_file"] == "reference_int8.tflite"  # the host runs the CPU reference
    assert [t["dtype"] for t in report["io"]["inputs"] + report["io"]["outputs"]] == ["int8", "int8"]
    assert m["metrics"]["accuracy"] >= m["metrics"]["float_accuracy"] - 1.0


def test_vela_configuration_defaults_per_accelerator(u55, u65):
    r55 = json.loads((u55.out / "vela_report.json").read_text())
    r65 = json.loads((u65.out / "vela_report.json").read_text())
    settings = [(r["system_config"], r["memory_mode"], r["clock_mhz"]) for r in (r55, r65)]
    assert settings == [
        ("Ethos_U55_High_End_Embedded", "Shared_Sram", 500),
        ("Ethos_U65_High_End", "Dedicated_Sram", 1000),
    ]
    assert r65["cycles"]["total"] < r55["cycles"]["total"]  # twice the MACs per cycle


def test_preflight_check_agrees_with_vela_on_digits(u55):
    import onnx

    target = load_target("ethos-u55-128")
    proto = onnx.load(DIGITS / "model.onnx")
    report = target.check(proto.SerializeToString(), proto, target.spec)
    assert report.ok
    (note,) = report.notes
    assert "100.0% of 0.6 M MACs" in note and "CPU fallback: none" in note
    assert any("CPU fallback: none" in n for n in u55.notes)  # the plan's prediction, and Vela: 100% (above)


def test_preflight_and_vela_name_the_same_fallback_and_full_offload_refuses_it(sine_pt2, tmp_path, keypair):
    result = _compile(str(sine_pt2), "ethos-u55-128", tmp_path / "a", keypair[0], tmp_path / "cache")
    report = json.loads((tmp_path / "a" / "vela_report.json").read_text())
    vela_cpu = {f["op"] for f in report["fallback"]} - {"QUANTIZE", "DEQUANTIZE"}
    placement = predict_placement(_onnx_of(sine_pt2), "ethos-u55-128")
    assert {op.tflite_op for op, _ in placement.cpu} == vela_cpu == {"SIN", "MEAN"}
    assert placement.describe() in result.notes  # what the compile reported before running Vela
    assert all(f["reason"] for f in report["fallback"]) and report["operators"]["npu_percent"] < 100
    with pytest.raises(TargetError) as info:
        _compile(str(sine_pt2), "ethos-u55-128", tmp_path / "b", keypair[0], tmp_path / "cache",
                 require_full_offload="true")  # fmt: skip
    assert "require_full_offload" in info.value.message and "SIN" in info.value.message
    assert not (tmp_path / "b").exists()


def _onnx_of(source: Path):
    import onnx

    from edgeml.compiler.content_cache import ContentCache
    from edgeml.compiler.intake import identify_source, take_in
    from edgeml.compiler.progress import NullProgress

    intake = take_in(identify_source(str(source)), ContentCache(None), NullProgress())
    return onnx.load_model_from_string(intake.onnx.data)


def test_vela_lowering_itself_refuses_a_fallback_under_full_offload(sine_pt2, tmp_path):
    from edgeml.calibration.dataset import Dataset
    from edgeml.compiler.content_cache import ContentCache
    from edgeml.compiler.intake import identify_source, take_in
    from edgeml.compiler.lowerings.compile_with_vela import CompileWithVela, CompileWithVelaConfig
    from edgeml.compiler.passes.base import PassContext
    from edgeml.compiler.progress import NullProgress

    source = identify_source(str(sine_pt2))
    intake = take_in(source, ContentCache(None), NullProgress())
    calib = Dataset({"x": np.load(DIGITS / "calib.npz")["input"][:32]})
    lowering = CompileWithVela(CompileWithVelaConfig(require_full_offload=True))
    with pytest.raises(TargetError) as info:
        lowering(intake.onnx.data, PassContext(intake.signature, calib, tmp_path, source))
    assert "Vela left" in info.value.message and "SIN" in info.value.message


def test_float_tflite_is_refused_before_vela_with_the_reason(tmp_path):
    import litert_torch

    from edgeml.compiler.lowerings.run_vela import VelaOptions, run_vela
    from edgeml.runtimes import open_session
    from examples.digits.digits_cnn import build

    module, (example,) = build()
    litert_torch.convert(module, (example[:1],)).export(str(tmp_path / "float.tflite"))
    float_model = (tmp_path / "float.tflite").read_bytes()
    session = open_session("litert", tmp_path / "float.tflite")  # float I/O passes through untouched
    assert session.io_quantization == {} and session.run({"args_0": example[:1].numpy()})["output_0"].shape == (1, 10)
    with pytest.raises(TargetError) as info:
        run_vela(float_model, VelaOptions("ethos-u55-128", "Ethos_U55_High_End_Embedded", "Shared_Sram"), tmp_path, "x")
    assert "float" in info.value.message and "Feature-map dataTypes" in info.value.message and "INT8" in info.value.hint


def test_unknown_vela_system_config_is_refused_with_the_choices():
    import onnx

    target = load_target("ethos-u55-128")
    recipe = make_recipe(target.recipe_type, target.spec.id, target.spec.recipe_defaults, {"system_config": "Nope"})
    with pytest.raises(TargetError) as info:
        target.plan(onnx.load(DIGITS / "model.onnx"), recipe)
    assert "system_config='Nope'" in info.value.message and "Ethos_U55_High_End_Embedded" in info.value.hint


def test_missing_vela_names_the_extra_to_install(monkeypatch):
    import importlib.util

    import onnx

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ethosu.vela" else real(name, *a))
    target = load_target("ethos-u65-256")
    recipe = make_recipe(target.recipe_type, target.spec.id, target.spec.recipe_defaults, {})
    with pytest.raises(TargetError) as info:
        target.plan(onnx.load(DIGITS / "model.onnx"), recipe)
    assert "ethosu.vela" in info.value.message and info.value.hint == "pip install 'edgeml[ethos-u]'"

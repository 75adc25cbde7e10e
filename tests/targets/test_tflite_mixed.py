"""int8-mixed on the full-INT8 LiteRT targets (tflite-cpu, ethos-u55-128), through the real toolchain:
litert-torch PT2E with named submodules left in float32, LiteRT running the result, Vela placing the float
layers on the CPU. The contract shared with the other targets (search, report, failure) is in
tests/compiler/test_accuracy_aware.py; here: what is special to PyTorch-sourced TFLite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgeml
from edgeml.errors import BudgetError, TargetError
from edgeml.targets.litert.tflite_mixed_plan import weighted_modules

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
FLOOR = 0.99995  # all-INT8 digits misses it (≈0.99990); keeping the Gemm in float meets it
OUT_OF_REACH = 0.99999999


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mixed-cache")  # NOTE: shared, so each search's rank builds are made once


def _compile(target: str, out: Path, keypair, cache: Path, floor: float = FLOOR, **options):
    return edgeml.compile(
        str(DIGITS / "model.pt2"), target, key=keypair[0], out=out, cache_dir=cache, calib=DIGITS / "calib.npz",
        eval_data=DIGITS / "calib.npz", min_cosine=floor, min_agreement=0.0,  # NOTE: the cosine floor under test
        options={"precision": "int8-mixed", **options},
    )  # fmt: skip  # NOTE: calib.npz has no labels: the budget is the cosine floor


@pytest.fixture(scope="module")
def tflite_mixed(tmp_path_factory, keypair, cache):
    out = tmp_path_factory.mktemp("tflite-mixed") / "digits"
    _compile("tflite-cpu", out, keypair, cache)
    return out


def _op_dtypes(model: bytes) -> list[tuple[str, str]]:
    """(TFLite operator, dtype of its first input) in execution order, delegates left out."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    return [
        (op["op_name"], np.dtype(interpreter._get_tensor_details(op["inputs"][0], 0)["dtype"]).name)
        for op in interpreter._get_ops_details()
        if op["op_name"] != "DELEGATE"
    ]


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_the_mix_keeps_the_ranked_layer_in_float_and_meets_a_floor_int8_misses(tflite_mixed, keypair):
    m = edgeml.verify(tflite_mixed, keypair[1]).manifest
    assert m["precision"] == "int8-mixed" and m["metrics"]["fidelity"]["output"]["cosine"] >= FLOOR
    search = m["decision"]["mixed_precision"]
    assert search["found"] and "has cosine" in search["base_miss"]  # all-INT8 missed the cosine floor
    assert {s["layer"] for s in search["ranking"]} == {"conv1", "conv2", "conv3", "fc"}  # module paths
    keep = search["keep_float"]
    assert keep and set(keep) <= {s["layer"] for s in search["ranking"]}
    (lowering,) = m["provenance"]["passes"]
    assert lowering["config"]["keep_float"] == keep  # the file was built with exactly the search's mix
    assert f"kept in float32: {', '.join(keep)}" in lowering["notes"]


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_the_kept_layer_runs_in_float32_and_the_rest_in_int8(tflite_mixed):
    m = json.loads((tflite_mixed / "manifest.json").read_text())
    ops = _op_dtypes((tflite_mixed / "model.tflite").read_bytes())
    float_ops = {op for op, dtype in ops if dtype == "float32"}
    int8_ops = {op for op, dtype in ops if dtype == "int8"}
    kinds = {"fc": "FULLY_CONNECTED", "conv1": "DEPTHWISE_CONV_2D"}  # conv1 has one input channel
    for layer in m["decision"]["mixed_precision"]["keep_float"]:
        if layer in kinds:
            assert kinds[layer] in float_ops
    assert "CONV_2D" in int8_ops  # conv2 and conv3 stay int8 unless the search kept both


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_each_layer_kept_in_float_changes_the_output_as_ranked(tflite_mixed):
    search = json.loads((tflite_mixed / "manifest.json").read_text())["decision"]["mixed_precision"]
    gains = {s["layer"]: s["gain_db"] for s in search["ranking"]}
    assert len(set(gains.values())) > 1  # the fallback changes the numerics: float layers really are float
    assert search["keep_float"][0] == max(gains, key=gains.get)


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_no_mix_meets_an_unreachable_floor_and_the_error_names_module_paths(tmp_path, keypair, cache):
    with pytest.raises(BudgetError) as info:
        _compile("tflite-cpu", tmp_path / "out", keypair, cache, floor=OUT_OF_REACH)
    assert info.value.message.startswith("int8-mixed cannot meet the accuracy budget")
    assert "fc (Gemm, +" in info.value.message
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_ethos_u_places_the_float_layers_on_the_cpu_and_says_so(tmp_path, keypair, cache):
    out = tmp_path / "u55"
    result = _compile("ethos-u55-128", out, keypair, cache)
    m = json.loads((out / "manifest.json").read_text())
    keep = m["decision"]["mixed_precision"]["keep_float"]
    report = json.loads((out / "vela_report.json").read_text())
    assert keep and report["operators"]["cpu"] >= 1
    assert any("unsupported DataType Float32" in f["reason"] for f in report["fallback"])
    assert any("run on the Cortex-M CPU" in n and "NPU part only" in n for n in result.notes)


def test_ethos_u_refuses_int8_mixed_with_full_offload_before_any_work(tmp_path, keypair):
    with pytest.raises(TargetError) as info:
        _compile("ethos-u55-128", tmp_path / "out", keypair, tmp_path / "c", require_full_offload=True)
    assert "require_full_offload" in info.value.message and "precision=int8" in info.value.hint
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*.tflite"))


def test_a_layer_name_that_is_no_submodule_is_refused_with_the_names_that_are(tmp_path):
    import torch

    from edgeml.calibration.dataset import Dataset
    from edgeml.compiler.lowerings.quantize_pt2e_to_tflite import quantize_pt2e_to_tflite
    from edgeml.signature import ModelSignature, TensorSpec

    module = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    signature = ModelSignature((TensorSpec("x", "float32", (1, 4)),), (TensorSpec("y", "float32", (1, 3)),))
    data = Dataset({"x": np.ones((2, 4), np.float32)})
    with pytest.raises(TargetError) as info:
        quantize_pt2e_to_tflite(module, signature, data, True, tmp_path, "lowering t", keep_float=("nope",))
    assert "no submodule named nope" in info.value.message and "e.g. 0" in info.value.hint


def test_weighted_modules_are_named_by_their_full_path_in_the_source():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.act = nn.Linear(8, 8), nn.ReLU()

        def forward(self, x):
            return self.act(self.fc(x)) + x

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks, self.head = nn.Sequential(Block(), Block()), nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.blocks(x))

    proto = torch.onnx.export(Model().eval(), (torch.randn(2, 8),), dynamo=True).model_proto
    assert [(m.path, m.op, m.weights) for m in weighted_modules(proto)] == [
        ("blocks.0.fc", "Gemm", 64), ("blocks.1.fc", "Gemm", 64), ("head", "Gemm", 16),
    ]  # fmt: skip  # weights: the weight matrix's elements, not the bias


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_the_html_report_shows_the_search_ranking_and_every_mix_tried(tflite_mixed, tmp_path):
    from click.testing import CliRunner

    from edgeml.cli import main

    page = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["explain", str(tflite_mixed), "--html", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    search = json.loads((tflite_mixed / "explain.json").read_text())["mixed_precision"]
    assert "<h2>Accuracy-aware search (int8-mixed)</h2>" in text and search["summary"] in text
    for s in search["ranking"]:
        row = f"<td class=l>{s['layer']}</td><td class=l>{s['op']}</td><td>{s['gain_db']:+.2f}</td>"
        assert row + f"<td>{s['cost']:,}</td>" in text and s["cost"] > 0  # each is a layer with weights
    assert text.count("<td class=l>within budget</td></tr>") == sum(t["miss"] is None for t in search["tries"])
    assert "kept in float: needed to meet the budget" in text and "<script" not in text


def test_without_namespace_metadata_layers_are_named_by_their_weights():
    """The TorchScript exporter writes no `namespace`; its initializers keep the parameter paths."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2, 4), np.float32), "blocks.0.fc.weight")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "blocks.0.fc.weight"], ["y"], name="/blocks.0/fc/Gemm", transB=1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [weight],
    )
    assert weighted_modules(helper.make_model(graph)) == [("blocks.0.fc", "Gemm", "y", 8)]


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_auto_mode_builds_the_mix_when_full_int8_misses_and_selects_among_all(tflite_mixed, tmp_path, keypair, cache):
    result = edgeml.compile(
        str(DIGITS / "model.pt2"), "tflite-cpu", key=keypair[0], out=tmp_path / "auto", cache_dir=cache,
        calib=DIGITS / "calib.npz", eval_data=DIGITS / "calib.npz", min_cosine=FLOOR, min_agreement=0.0,
        options={"min_speedup": 0, "objective": "size"},
    )  # fmt: skip  # NOTE: after the fixture, the same cache: the search is read back, not redone
    v = result.decision.verdicts
    assert v["int8"].startswith("rejected: ") and "has cosine" in v["int8"]  # the per-channel cosine floor
    assert "layers that cost most: fc (Gemm, +" in v["int8"]
    assert v["int8-mixed"].split(":")[0] in ("passes", "shipped")
    assert "of 4 sensitive layers in float: fc" in v["int8-mixed"]
    assert set(v) == {"fp32", "int8-dynamic", "int8", "int8-mixed"}
    explain = json.loads((tmp_path / "auto" / "explain.json").read_text())
    ok = {n for n, verdict in v.items() if verdict.split(":")[0] in ("passes", "shipped")}
    passing = {c["name"]: c["size_bytes"] for c in explain["candidates"] if c["name"] in ok}
    assert passing[result.decision.chosen] == min(passing.values())  # objective=size among those within budget


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_explain_has_each_layers_numbers_from_the_pt2e_twin(tflite_mixed):
    explain = json.loads((tflite_mixed / "explain.json").read_text())
    search = explain["mixed_precision"]
    int8 = {r["layer"]: r for r in explain["layers"]["int8"]}
    assert set(int8) == {"conv1", "conv2", "conv3", "fc"} and {r["precision"] for r in int8.values()} == {"int8"}
    for name in ("conv1", "conv2", "conv3"):  # read after the rounding that follows the fused ReLU
        r = int8[name]
        assert r["op"] == "Conv+Relu" and r["int8_min"] == 0.0 < r["float_max"] <= r["int8_max"] * 1.01
        assert 30.0 < r["sqnr_db"] < 70.0 and r["cosine"] > 0.999
    assert abs(int8["fc"]["sqnr_db"] - search["base_sqnr_db"]) < 1.0  # the model's output, measured two ways
    mixed = {r["layer"]: r for r in explain["layers"]["int8-mixed"]}
    for name in search["keep_float"]:
        assert mixed[name]["precision"] == "float" and "kept in float" in mixed[name]["why"]

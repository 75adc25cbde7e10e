"""Accuracy-aware INT8 (`--max-drop` / `--min-cosine`), one contract on every target with an `int8-mixed`
candidate: when the all-INT8 candidate misses the budget — accuracy points where the evaluation set has
labels, else a fidelity floor — `int8-mixed` keeps the fewest layers in float that meet it, swapped for
cheaper ones (fewer weights) where those meet it too, and records them; when no mix can, a pinned compile
fails naming the layers and their cost, and auto mode ships float and says why. Same wording, same manifest
and report fields, whichever backend quantizes.

Digits, evaluated on calib.npz without labels (floors) or on eval.npz labelled with the float model's own
predictions (float scores 100 %, each flipped prediction costs 0.25 points):

    cpu-ort (ONNX Runtime QDQ, U8S8)  all-INT8 cosine ≈ 0.99995, 1 flip; Gemm in float: ≈ 0.99999, 0 flips
    cpu-openvino (NNCF)               all-INT8 cosine ≈ 0.99954, 2 flips; Gemm in float ≈ 0.99986, 2 flips;
                                      Gemm + conv3 in float ≈ 0.99991, 1 flip: the fewest layers, which
                                      the search swaps for cheaper ones: conv3 holds 18,432 of the 23,824
                                      weights. Gemm + ReduceMean + conv1 ≈ 0.99990 (2 flips); with conv2
                                      too ≈ 0.99993, 1 flip (99.7 KiB → 44.6 and 54.9 KiB)

A tiny transformer (`tiny_transformer` below: embedding, one attention block, an FFN whose hidden unit 0 is
an outlier, a classifier) on cpu-ort, which mixes a transformer from dynamic INT8 (static INT8 is never built
for one), on 128 evaluation samples (each flip 0.78 points):

    cpu-ort (ONNX Runtime dynamic)    all-INT8 cosine ≈ 0.99592, 5 flips; ffn_down in float: ≈ 0.99913, 0 flips
                                      (its input's outlier makes the run-time per-tensor rounding coarse)

`arch=x86_64` pins cpu-ort's integer types, so its numbers do not depend on the host. Each target's builds
share one cache, so the searches after the first reuse its quantizations.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import edgeml
from edgeml.errors import BudgetError, CalibrationError

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
OUT_OF_REACH = 0.99999999  # no mix that leaves a layer in INT8 gets this close to float
WEIGHTS = {"node_conv2d": 144, "node_conv2d_1": 4608, "node_conv2d_2": 18432, "node_linear": 640,
           "q_proj": 256, "k_proj": 256, "v_proj": 256, "o_proj": 256, "ffn_up": 1024, "ffn_down": 1024,
           "classifier": 160}  # fmt: skip  # each layer's weight elements (biases not counted); others: none


@dataclass(frozen=True)
class Case:
    id: str
    target: str
    base: str  # the all-INT8 candidate
    floor: float  # between all-INT8 and the mix
    max_drop: float  # accuracy points, between all-INT8's drop and the mix's
    keep: list[str]  # what the mix keeps in float at the floor
    recorded_by: tuple[str, str]  # the provenance step and option that hold the float layers
    model_files: tuple[str, ...]
    options: dict = field(default_factory=dict)
    model: str = "digits"  # the model and data the case compiles (see `data`)
    top: str = "node_linear (Gemm"  # the most sensitive layer, as reports describe it
    met_by_int8: float = 0.999  # a floor all-INT8 meets
    keep_at_max_drop: list[str] | None = None  # … at the accuracy budget, where it differs


CASES = [
    Case("cpu-ort", "cpu-ort", "int8-static", 0.99998, 0.0, ["node_linear"], ("quantize-static", "exclude_nodes"),
         ("model.onnx",), {"arch": "x86_64"}),
    Case("cpu-openvino", "cpu-openvino", "int8", 0.9999, 0.3, ["node_linear", "node_mean", "node_conv2d"],
         ("quantize-with-nncf", "ignored"), ("model.xml", "model.bin"),
         keep_at_max_drop=["node_linear", "node_mean", "node_conv2d", "node_conv2d_1"]),
    Case("cpu-ort-transformer", "cpu-ort", "int8-dynamic", 0.999, 0.5, ["ffn_down"],
         ("quantize-dynamic", "exclude_nodes"), ("model.onnx",), model="tiny-transformer", top="ffn_down (MatMul",
         met_by_int8=0.99),
]  # fmt: skip


@dataclass(frozen=True)
class Data:
    model: Path
    unlabelled: Path  # evaluation inputs without labels: the budget is the cosine floor
    labelled: Path  # the evaluation inputs labelled with the float model's predictions


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.id)
def case(request, tmp_path_factory):
    """The case, one cache for its builds, and its model and data."""
    c = request.param
    folder = tmp_path_factory.mktemp(f"data-{c.id}")
    data = _digits(folder) if c.model == "digits" else _tiny_transformer_data(folder)
    return c, tmp_path_factory.mktemp(f"cache-{c.id}"), data


def _digits(folder: Path) -> Data:
    with np.load(DIGITS / "eval.npz") as z:
        x = z["input"]
    np.savez(folder / "eval_float_labels.npz", input=x, labels=_float_predictions(DIGITS / "model.onnx", input=x))
    return Data(DIGITS / "model.onnx", DIGITS / "calib.npz", folder / "eval_float_labels.npz")


def _tiny_transformer_data(folder: Path) -> Data:
    ids = tiny_transformer(folder / "model.onnx")
    calib, evaluation = ids[:256], ids[256:]
    np.savez(folder / "calib.npz", ids=calib)
    np.savez(folder / "eval.npz", ids=evaluation)
    labels = _float_predictions(folder / "model.onnx", ids=evaluation)
    np.savez(folder / "eval_float_labels.npz", ids=evaluation, labels=labels)
    return Data(folder / "model.onnx", folder / "eval.npz", folder / "eval_float_labels.npz")


def _float_predictions(model: Path, **feeds) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, feeds)[0].argmax(1)


def tiny_transformer(path: Path, outlier: float = 200.0, tokens=8, width=16, hidden=64, vocab=32, classes=10):
    """A seeded one-block transformer classifier (ONNX, token ids in) saved at `path`, and 384 token sequences.

    FFN hidden unit 0 is scaled by `outlier`: dynamic INT8 rounds `ffn_down`'s input with one run-time scale
    for the whole tensor, which the outlier makes coarse for every other unit."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)

    up = w(width, hidden)
    up[:, 0] *= outlier
    weights = {"table": w(vocab, width) * np.float32(np.sqrt(vocab)), "wq": w(width, width), "wk": w(width, width),
               "wv": w(width, width), "wo": w(width, width), "w1": up, "w2": w(hidden, width), "wc": w(width, classes),
               "scale": np.array(width**-0.5, np.float32), "axes": np.array([1], np.int64)}  # fmt: skip
    n = helper.make_node
    nodes = [
        n("Gather", ["table", "ids"], ["x"], name="embed"),
        n("MatMul", ["x", "wq"], ["q"], name="q_proj"), n("MatMul", ["x", "wk"], ["k"], name="k_proj"),
        n("MatMul", ["x", "wv"], ["v"], name="v_proj"), n("Transpose", ["k"], ["kt"], perm=[0, 2, 1], name="k_t"),
        n("MatMul", ["q", "kt"], ["s0"], name="scores"), n("Mul", ["s0", "scale"], ["s"], name="scaled"),
        n("Softmax", ["s"], ["p"], axis=-1, name="softmax"), n("MatMul", ["p", "v"], ["a"], name="attend"),
        n("MatMul", ["a", "wo"], ["o"], name="o_proj"), n("Add", ["x", "o"], ["h"], name="residual1"),
        n("MatMul", ["h", "w1"], ["f0"], name="ffn_up"), n("Relu", ["f0"], ["f"], name="ffn_act"),
        n("MatMul", ["f", "w2"], ["y"], name="ffn_down"), n("Add", ["h", "y"], ["z"], name="residual2"),
        n("ReduceMean", ["z", "axes"], ["pooled"], keepdims=0, name="pool"),
        n("MatMul", ["pooled", "wc"], ["logits"], name="classifier"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "tiny_transformer", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", tokens])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )  # fmt: skip
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return rng.integers(0, vocab, (384, tokens))


def _compile(case, tmp_path, keypair, name="out", options=None, **kwargs):
    c, cache, data = case
    kwargs.setdefault("eval_data", data.unlabelled)
    return edgeml.compile(
        str(data.model), c.target, key=keypair[0], out=tmp_path / name, cache_dir=cache,
        options=c.options | (options or {}), **kwargs,
    )  # fmt: skip


# objective=size, min_speedup=0 below: the choice does not hang on this host's timing noise
CHOOSE_BY_SIZE = {"min_speedup": 0, "objective": "size"}


def test_a_floor_int8_misses_ships_the_mix_with_its_float_layers_recorded(case, tmp_path, keypair):
    c = case[0]
    result = _compile(case, tmp_path, keypair, min_cosine=c.floor, options=CHOOSE_BY_SIZE)
    d = result.decision
    assert f"below the {c.floor} floor" in d.verdicts[c.base]
    assert f"layers that cost most: {c.top}, +" in d.verdicts[c.base]
    assert d.chosen == "int8-mixed", d.verdicts
    search = d.mixed_precision
    assert search["found"] and search["keep_float"] == c.keep
    assert search["ranking"][0]["layer"] == c.keep[0] and search["ranking"][0]["gain_db"] > 3
    assert all(s["cost"] == WEIGHTS.get(s["layer"], 0) for s in search["ranking"]), search["ranking"]
    assert f"keeps {len(c.keep)} of" in d.verdicts["int8-mixed"] and c.top in d.verdicts["int8-mixed"]
    m = result.manifest
    assert m["precision"] == "int8-mixed" and min(f["cosine"] for f in m["metrics"]["fidelity"].values()) >= c.floor
    step, option = c.recorded_by
    (quantize,) = [p for p in m["provenance"]["passes"] if p["name"] == step]
    assert list(quantize["config"][option]) == c.keep
    assert m["decision"]["mixed_precision"]["keep_float"] == c.keep
    explain = json.loads((tmp_path / "out" / "explain.json").read_text())
    (row,) = [r for r in explain["candidates"] if r["name"] == "int8-mixed"]
    assert row["shipped"] and row["keep_float"] == c.keep and row["precision"].startswith(f"INT8 with {len(c.keep)} ")
    edgeml.verify(tmp_path / "out", keypair[1])
    shown = subprocess.run(["edgeml", "explain", str(tmp_path / "out")], capture_output=True, text=True, check=True,
                           env=os.environ | {"COLUMNS": "250"}).stdout  # fmt: skip
    assert "shipped int8-mixed" in shown and "keeps" in shown
    rows = [ln for ln in shown.splitlines() if f"│ {c.keep[0]} " in ln]  # its rows in the report's layer tables
    assert any("kept in float" in row for row in rows), shown
    again = _compile(case, tmp_path, keypair, "again", min_cosine=c.floor, options=CHOOSE_BY_SIZE)
    assert again.fully_cached and again.decision.mixed_precision == search
    for file in c.model_files:
        assert (tmp_path / "out" / file).read_bytes() == (tmp_path / "again" / file).read_bytes(), file


def test_an_accuracy_budget_int8_misses_ships_the_mix(case, tmp_path, keypair):
    c, _, data = case
    result = _compile(case, tmp_path, keypair, eval_data=data.labelled, max_drop=c.max_drop, options=CHOOSE_BY_SIZE)
    d = result.decision
    assert f"exceeds the {c.max_drop:g}-point budget" in d.verdicts[c.base]
    assert d.chosen == "int8-mixed" and d.mixed_precision["keep_float"] == (c.keep_at_max_drop or c.keep), d.verdicts
    assert all(t["accuracy"] is not None for t in d.mixed_precision["tries"])  # judged in accuracy points
    metrics = result.manifest["metrics"]
    assert metrics["float_accuracy"] == 100.0 and metrics["accuracy_drop"] <= c.max_drop


def test_pinned_mixed_that_cannot_meet_the_budget_names_layers_and_their_cost(case, tmp_path, keypair):
    with pytest.raises(BudgetError) as info:
        _compile(case, tmp_path, keypair, min_cosine=OUT_OF_REACH, options={"precision": "int8-mixed"})
    message = info.value.message
    assert message.startswith("int8-mixed cannot meet the accuracy budget: no mix of the")
    assert f"{case[0].top}, +" in message and "dB output SQNR in float" in message
    assert "--precision fp32" in info.value.hint
    assert not (tmp_path / "out").exists()


def test_auto_mode_records_a_search_that_found_nothing_and_keeps_float(case, tmp_path, keypair):
    result = _compile(case, tmp_path, keypair, min_cosine=OUT_OF_REACH, options={"min_speedup": 0})
    d = result.decision
    assert d.chosen == "fp32"
    assert d.verdicts["int8-mixed"].startswith("not built: no mix of the")
    assert f"{case[0].top}, +" in d.verdicts["int8-mixed"]
    assert "int8-mixed not built" in d.reason


def test_a_recipe_file_pins_the_mix_which_ships_all_int8_when_that_meets_the_budget(case, tmp_path, keypair):
    c = case[0]
    (tmp_path / "r.toml").write_text(
        f'target = "{c.target}"\n[budget]\nmin_cosine = {c.met_by_int8}\n[options]\nprecision = "int8-mixed"\n'
    )
    result = _compile(case, tmp_path, keypair, recipe_file=tmp_path / "r.toml")
    assert result.decision.chosen == "int8-mixed" and result.decision.mixed_precision["keep_float"] == []
    assert set(result.manifest["decision"]["candidates"]) == {"int8-mixed"}
    assert result.manifest["provenance"]["recipe"]["options"]["precision"] == "int8-mixed"


def test_the_manifest_as_recipe_rebuilds_the_same_mix_from_scratch(case, tmp_path, keypair):
    c = case[0]
    first = _compile(case, tmp_path, keypair, min_cosine=c.floor, options=CHOOSE_BY_SIZE)
    assert first.decision.chosen == "int8-mixed", first.decision.verdicts
    c, _, data = case
    again = edgeml.compile(str(data.model), key=keypair[0], out=tmp_path / "again", eval_data=data.unlabelled,
                           recipe_file=tmp_path / "out" / "manifest.json", no_cache=True)  # fmt: skip
    assert again.decision.chosen == "int8-mixed" and again.decision.mixed_precision["keep_float"] == c.keep
    step, option = c.recorded_by
    (quantize,) = [p for p in again.manifest["provenance"]["passes"] if p["name"] == step]
    assert list(quantize["config"][option]) == c.keep
    for file in c.model_files:
        assert (tmp_path / "out" / file).read_bytes() == (tmp_path / "again" / file).read_bytes(), file


def test_an_int8_model_far_slower_than_float_is_not_searched(case, tmp_path, keypair):
    c = case[0]
    result = _compile(case, tmp_path, keypair, min_cosine=c.floor, options={"min_speedup": 100})
    assert result.decision.chosen == "fp32"
    assert result.decision.verdicts["int8-mixed"].startswith(f"not tried: {c.base} runs at")
    assert result.decision.mixed_precision == {"skipped": result.decision.verdicts["int8-mixed"]}


def test_an_accuracy_budget_needs_labels(tmp_path, keypair):
    with pytest.raises(CalibrationError, match=r"calib\.npz has no labels"):
        edgeml.compile(str(DIGITS / "model.onnx"), "cpu-openvino", key=keypair[0], out=tmp_path / "out",
                       eval_data=DIGITS / "calib.npz", max_drop=0.5)  # fmt: skip
    shutil.copy(DIGITS / "model.onnx", tmp_path / "model.onnx")
    with pytest.raises(CalibrationError, match="no evaluation data was given") as info:
        edgeml.compile(str(tmp_path / "model.onnx"), key=keypair[0], out=tmp_path / "out",
                       calib=DIGITS / "calib.npz", max_drop=0.5)  # fmt: skip
    assert "--min-cosine" in info.value.hint
    assert not (tmp_path / "out").exists()

"""Accuracy-aware INT8 (`--max-drop` / `--min-cosine`), one contract on every target with an `int8-mixed`
candidate: when the all-INT8 candidate misses the budget — accuracy points where the evaluation set has
labels, else a fidelity floor — `int8-mixed` keeps the fewest layers in float that meet it, swapped for
cheaper ones (fewer weights) where those meet it too, and records them; when no mix can, a pinned compile
fails naming the layers and their cost, and auto mode ships float and says why. Same wording, same manifest
and report fields, whichever backend quantizes.

The models (tests/int8_sensitive_models.py) make one layer sensitive by construction and leave no integer
kernel room to differ: no u8×s8 pair can overflow int16, so an AVX2-only CPU (whose kernels saturate there),
a VNNI Xeon and an Arm core compute the same INT8 model. Measured both ways (this host's kernels, and every
QDQ / MatMulInteger / FakeQuantize evaluated exactly in float), identical to 0.01 dB and to the flip:

    sensitive_cnn on cpu-ort           all-INT8 cosine 0.9717, 9 flips of 400; head in float: 0.9987, 3 flips
    (ONNX Runtime QDQ, U8S8)           (head +14.7 dB; the next layer +0.25 dB)
    sensitive_cnn on cpu-openvino      all-INT8 cosine 0.9565, 13 flips; head in float: 0.9951, 2 flips
    (NNCF)                             (head +10.5 dB; the next +0.5 dB)
    sensitive_transformer on cpu-ort   all-INT8 cosine 0.9812, 16 flips of 128; ffn_down in float: 0.9997,
    (dynamic INT8: static INT8 is      2 flips (ffn_down +17.7 dB; the next +0.1 dB)
    never built for a transformer)

Labelled evaluation sets carry the float model's own predictions (float scores 100 %). The floors and
budgets sit between the all-INT8 and the mix figures with ≥ 3 dB (≥ 3 flips) on each side; closest to a
limit is all-INT8's worst channel on cpu-openvino, 0.918 against the default 0.9 channel floor. Each target's
builds share one cache, so the searches after the first reuse its quantizations. The cost-aware swap on a
real runtime (ONNX Runtime: the search is the compiler's, the same on every target, and on fakes in
test_mixed_precision_search.py): `test_the_fewest_layers_give_way_to_a_cheaper_layer_that_meets_the_budget_too`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import edgeml
from edgeml.errors import BudgetError, CalibrationError

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
OUT_OF_REACH = 0.99999999  # no mix that leaves a layer in INT8 gets this close to float
WEIGHTS = {"conv1": 162, "conv2": 1377, "conv3": 5049, "head": 330,
           "q_proj": 256, "k_proj": 256, "v_proj": 256, "o_proj": 256, "ffn_up": 1024, "ffn_down": 1024,
           "classifier": 160}  # fmt: skip  # each layer's weight elements (biases not counted); others: none
DOMINANT_DB = 5.0  # the sensitive layer recovers at least this much more than any other (10–17 dB measured)


@dataclass(frozen=True)
class Case:
    id: str
    target: str
    base: str  # the all-INT8 candidate
    floor: float  # between all-INT8 and the mix
    max_drop: float  # accuracy points, between all-INT8's drop and the mix's
    recorded_by: tuple[str, str]  # the provenance step and option that hold the float layers
    model_files: tuple[str, ...]
    options: dict = field(default_factory=dict)
    model: str = "sensitive_cnn"  # the conftest fixture with the model and its data
    sensitive: str = "head"  # the layer the model makes sensitive: what the mix keeps in float
    op: str = "Gemm"  # … as reports describe it
    met_by_int8: float = 0.9  # a floor all-INT8 meets

    @property
    def top(self) -> str:
        return f"{self.sensitive} ({self.op}"


CASES = [
    Case("cpu-ort", "cpu-ort", "int8-static", 0.995, 1.5, ("quantize-static", "exclude_nodes"), ("model.onnx",),
         {"arch": "x86_64"}),
    Case("cpu-openvino", "cpu-openvino", "int8", 0.99, 1.5, ("quantize-with-nncf", "ignored"),
         ("model.xml", "model.bin")),
    Case("cpu-ort-transformer", "cpu-ort", "int8-dynamic", 0.999, 4.0, ("quantize-dynamic", "exclude_nodes"),
         ("model.onnx",), model="sensitive_transformer", sensitive="ffn_down", op="MatMul", met_by_int8=0.95),
]  # fmt: skip


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.id)
def case(request, tmp_path_factory):
    """The case, one cache for its builds, and its model and data."""
    c = request.param
    return c, tmp_path_factory.mktemp(f"cache-{c.id}"), request.getfixturevalue(c.model)


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
    assert d.chosen == "int8-mixed", d.verdicts
    search = d.mixed_precision
    top, *others = search["ranking"]  # measured: the layer the model makes sensitive, far ahead of the rest
    assert top["layer"] == c.sensitive and top["gain_db"] > DOMINANT_DB + max(s["gain_db"] for s in others), others
    assert f"layers that cost most: {c.top}, +" in d.verdicts[c.base]
    keep = [top["layer"]]
    assert search["found"] and search["keep_float"] == keep
    assert all(s["cost"] == WEIGHTS.get(s["layer"], 0) for s in search["ranking"]), search["ranking"]
    assert "keeps 1 of" in d.verdicts["int8-mixed"] and c.top in d.verdicts["int8-mixed"]
    m = result.manifest
    assert m["precision"] == "int8-mixed" and min(f["cosine"] for f in m["metrics"]["fidelity"].values()) >= c.floor
    step, option = c.recorded_by
    (quantize,) = [p for p in m["provenance"]["passes"] if p["name"] == step]
    assert list(quantize["config"][option]) == keep
    assert m["decision"]["mixed_precision"]["keep_float"] == keep
    explain = json.loads((tmp_path / "out" / "explain.json").read_text())
    (row,) = [r for r in explain["candidates"] if r["name"] == "int8-mixed"]
    assert row["shipped"] and row["keep_float"] == keep and row["precision"].startswith("INT8 with 1 ")
    edgeml.verify(tmp_path / "out", keypair[1])
    shown = subprocess.run(["edgeml", "explain", str(tmp_path / "out")], capture_output=True, text=True, check=True,
                           env=os.environ | {"COLUMNS": "250"}).stdout  # fmt: skip
    assert "shipped int8-mixed" in shown and "keeps" in shown
    rows = [ln for ln in shown.splitlines() if f"│ {c.sensitive} " in ln]  # its rows in the report's layer tables
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
    assert d.chosen == "int8-mixed" and d.mixed_precision["keep_float"] == [c.sensitive], d.verdicts
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
    assert again.decision.chosen == "int8-mixed" and again.decision.mixed_precision["keep_float"] == [c.sensitive]
    step, option = c.recorded_by
    (quantize,) = [p for p in again.manifest["provenance"]["passes"] if p["name"] == step]
    assert list(quantize["config"][option]) == [c.sensitive]
    for file in c.model_files:
        assert (tmp_path / "out" / file).read_bytes() == (tmp_path / "again" / file).read_bytes(), file


def test_an_int8_model_far_slower_than_float_is_not_searched(case, tmp_path, keypair):
    c = case[0]
    result = _compile(case, tmp_path, keypair, min_cosine=c.floor, options={"min_speedup": 100})
    assert result.decision.chosen == "fp32"
    assert result.decision.verdicts["int8-mixed"].startswith(f"not tried: {c.base} runs at")
    assert result.decision.mixed_precision == {"skipped": result.decision.verdicts["int8-mixed"]}


@pytest.fixture(scope="module")
def two_sensitive_convs(int8_models, tmp_path_factory):
    """The CNN with a benign head, and conv3 (5,049 weights) and conv1 (162) left 11 weight levels each (guard 12):
    either one in float meets a floor all-INT8 misses, conv3 recovering more (measured: +4.2 and +3.5 dB; all
    INT8 cosine 0.9696, conv3 in float 0.9876, conv1 in float 0.9837, on AVX2 kernels and float-simulated alike;
    the worst channel's cosine over all samples, which the floor judges: 0.940, 0.984, 0.973 on AVX2)."""
    folder = tmp_path_factory.mktemp("two-sensitive-convs")
    return int8_models.sensitive_cnn(folder, head_outlier=2.0, guards={"conv3": 12.0, "conv1": 12.0})


def test_the_fewest_layers_give_way_to_a_cheaper_layer_that_meets_the_budget_too(two_sensitive_convs, tmp_path,
                                                                                  keypair):  # fmt: skip
    data = two_sensitive_convs
    result = edgeml.compile(
        str(data.model), "cpu-ort", key=keypair[0], out=tmp_path / "out", eval_data=data.unlabelled, min_cosine=0.96,
        cache_dir=tmp_path / "cache", options={"arch": "x86_64"} | CHOOSE_BY_SIZE,
    )  # fmt: skip
    d = result.decision
    assert "below the 0.96 floor" in d.verdicts["int8-static"]
    search = d.mixed_precision
    # NOTE: each meets the floor alone, so the ranking puts the cheaper first (conv3 recovers more dB)
    assert [s["layer"] for s in search["ranking"][:2]] == ["conv1", "conv3"], search["ranking"]
    assert search["ranking"][0]["meets"] and search["ranking"][1]["meets"]
    assert search["ranking"][1]["gain_db"] > search["ranking"][0]["gain_db"]
    tried = [(t["keep_float"], t["miss"] is None) for t in search["tries"]]
    assert tried == [(["conv1"], True)]  # measured while ranking: no mix built after it
    assert d.chosen == "int8-mixed" and search["keep_float"] == ["conv1"], d.verdicts
    assert WEIGHTS["conv1"] < WEIGHTS["conv3"]
    assert result.manifest["metrics"]["fidelity"]["logits"]["worst_channel_cosine"] >= 0.96


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

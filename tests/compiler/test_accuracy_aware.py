"""Accuracy-aware static INT8 on cpu-ort: when int8-static misses the budget, `int8-mixed` keeps the fewest
layers in float that meet it — or the compile says which layers cost what.

The digits CNN's all-INT8 output has cosine ≈ 0.99995 vs float on the calibration set; keeping its Gemm in
float lifts it to ≈ 0.99999. `arch=x86_64` pins the integer types, so the numbers do not depend on the host.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import edgeml
from edgeml.errors import BudgetError, CalibrationError

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
FLOOR = 0.99998  # between all-INT8 and INT8 with the Gemm in float
PINNED = {"arch": "x86_64"}


def _compile(tmp_path, keypair, name="out", options=None, **kwargs):
    kwargs.setdefault("eval_data", DIGITS / "calib.npz")  # no labels: the budget is the cosine floor
    return edgeml.compile(
        str(DIGITS / "model.onnx"), "cpu-ort", key=keypair[0], out=tmp_path / name,
        options=PINNED | (options or {}), **kwargs,
    )  # fmt: skip


def test_mixed_candidate_keeps_the_fewest_layers_in_float_to_meet_the_floor(tmp_path, keypair):
    # objective=size, min_speedup=0: the choice does not hang on this host's timing noise
    result = _compile(tmp_path, keypair, min_cosine=FLOOR, options={"min_speedup": 0, "objective": "size"})
    d = result.decision
    assert "below the 0.99998 floor" in d.verdicts["int8-static"]
    assert d.chosen == "int8-mixed", d.verdicts
    search = d.mixed_precision
    assert search["found"] and search["keep_float"] == ["node_linear"]
    assert search["ranking"][0]["layer"] == "node_linear" and search["ranking"][0]["gain_db"] > 3
    assert "keeps 1 of" in d.verdicts["int8-mixed"] and "node_linear (Gemm" in d.verdicts["int8-mixed"]
    m = result.manifest
    assert m["precision"] == "int8-mixed" and min(f["cosine"] for f in m["metrics"]["fidelity"].values()) >= FLOOR
    quantize = [p for p in m["provenance"]["passes"] if p["name"] == "quantize-static"]
    assert list(quantize[0]["config"]["exclude_nodes"]) == ["node_linear"]
    assert m["decision"]["mixed_precision"]["keep_float"] == ["node_linear"]
    edgeml.verify(tmp_path / "out", keypair[1])
    again = _compile(tmp_path, keypair, "again", min_cosine=FLOOR, options={"min_speedup": 0, "objective": "size"})
    assert again.fully_cached and again.decision.mixed_precision == search
    assert (tmp_path / "out" / "model.onnx").read_bytes() == (tmp_path / "again" / "model.onnx").read_bytes()


def test_pinned_mixed_that_cannot_meet_the_budget_names_layers_and_their_cost(tmp_path, keypair):
    with pytest.raises(BudgetError) as info:
        _compile(tmp_path, keypair, min_cosine=0.99999999, options={"precision": "int8-mixed"})
    message = info.value.message
    assert message.startswith("int8-mixed cannot meet the accuracy budget")
    assert "node_linear (Gemm, +" in message and "dB output SQNR in float" in message
    assert not (tmp_path / "out").exists()


def test_pinned_mixed_ships_all_int8_when_that_already_meets_the_budget(tmp_path, keypair):
    result = _compile(tmp_path, keypair, min_cosine=0.999, options={"precision": "int8-mixed"})
    assert result.decision.chosen == "int8-mixed" and result.decision.mixed_precision["keep_float"] == []
    assert set(result.manifest["decision"]["candidates"]) == {"int8-mixed"}


def test_auto_mode_records_a_search_that_found_nothing_and_keeps_float(tmp_path, keypair):
    result = _compile(tmp_path, keypair, min_cosine=0.99999999, options={"min_speedup": 0})
    d = result.decision
    assert d.chosen == "fp32"
    assert d.verdicts["int8-mixed"].startswith("not built: no mix of the")
    assert "int8-mixed not built" in d.reason


def test_an_int8_model_far_slower_than_float_is_not_searched(tmp_path, keypair):
    result = _compile(tmp_path, keypair, min_cosine=FLOOR, options={"min_speedup": 100})
    assert result.decision.chosen == "fp32"
    assert result.decision.verdicts["int8-mixed"].startswith("not tried: int8-static runs at")
    assert result.decision.mixed_precision == {"skipped": result.decision.verdicts["int8-mixed"]}


def test_an_accuracy_budget_needs_labels(tmp_path, keypair):
    with pytest.raises(CalibrationError, match=r"calib\.npz has no labels"):
        _compile(tmp_path, keypair, max_drop=0.5)
    shutil.copy(DIGITS / "model.onnx", tmp_path / "model.onnx")
    with pytest.raises(CalibrationError, match="no evaluation data was given") as info:
        edgeml.compile(str(tmp_path / "model.onnx"), key=keypair[0], out=tmp_path / "out",
                       calib=DIGITS / "calib.npz", max_drop=0.5)  # fmt: skip
    assert "--min-cosine" in info.value.hint
    assert not (tmp_path / "out").exists()

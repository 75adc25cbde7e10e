"""`edgeml compile` on the digits CNN, through the real ONNX Runtime: the artifact, the decision, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgeml
from edgeml.errors import BudgetError
from edgeml.runtimes import open_session

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def _compile(tmp_path, keypair, name="out", **kwargs):
    kwargs.setdefault("key", keypair[0])
    return edgeml.compile(str(DIGITS / "model.onnx"), "cpu-ort", out=tmp_path / name, **kwargs)


def test_artifact_carries_what_the_design_promises(digits_artifact, keypair):
    m = edgeml.verify(digits_artifact, keypair[1]).manifest
    assert m["io"]["inputs"] == [{"name": "input", "dtype": "float32", "shape": ["batch", 1, 8, 8]}]
    assert m["metrics"]["accuracy"] >= 95.0 and m["metrics"]["float_accuracy"] >= 95.0
    assert m["metrics"]["accuracy_drop"] <= 1.0
    assert set(m["decision"]["candidates"]) == {"fp32", "int8-static"}
    assert m["decision"]["chosen"] == m["precision"] and m["decision"]["reason"]
    assert m["provenance"]["calibration"]["samples"] == 256 and len(m["provenance"]["calibration"]["digest"]) == 64
    assert m["provenance"]["tools"]["onnxruntime"]
    assert sum(m["reference_profile"]["inputs"]["input"]["features"][0]["counts"]) == 256 * 64
    assert sum(m["reference_profile"]["outputs"]["logits"]["class_counts"]) == 256


def test_self_test_file_reproduces_on_the_runtime(digits_artifact):
    m = json.loads((digits_artifact / "manifest.json").read_text())
    session = open_session("onnxruntime", digits_artifact / "model.onnx")
    with np.load(digits_artifact / m["self_test"]["file"]) as z:
        out = session.run({"input": z["input/input"]})["logits"]
        np.testing.assert_allclose(out, z["expected/logits"], atol=m["self_test"]["atol"])


def test_int8_that_does_not_pay_off_falls_back_to_float_and_says_why(tmp_path, keypair):
    result = _compile(tmp_path, keypair, options={"min_speedup": 1000})
    assert result.decision.chosen == "fp32"
    assert "needs ≥ 1000×" in result.decision.verdicts["int8-static"]
    assert result.decision.reason.startswith("float kept: int8-static")
    assert result.manifest["decision"]["reason"] == result.decision.reason


def test_int8_outside_the_fidelity_floor_falls_back_and_names_layers(tmp_path, keypair):
    # no labels: the floor is the cosine vs float, set above what INT8 can reach
    result = _compile(tmp_path, keypair, eval_data=DIGITS / "calib.npz", min_cosine=0.99999999)
    verdict = result.decision.verdicts["int8-static"]
    assert result.decision.chosen == "fp32"
    assert "below the 0.99999999 floor" in verdict and "layers that cost most" in verdict and "SQNR" in verdict


def test_pinned_precision_that_cannot_meet_the_budget_fails_cleanly(tmp_path, keypair):
    with pytest.raises(BudgetError) as info:
        _compile(tmp_path, keypair, eval_data=DIGITS / "calib.npz", min_cosine=0.99999999,
                 options={"precision": "int8-static"})  # fmt: skip
    assert "int8-static" in info.value.message and "Layers that cost most" in info.value.message
    assert not (tmp_path / "out").exists()


def test_rerun_is_served_from_cache_and_says_so(tmp_path, keypair):
    first = _compile(tmp_path, keypair, name="a")
    second = _compile(tmp_path, keypair, name="b")
    assert first.cache_hits < first.steps and second.fully_cached
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (tmp_path / "b" / "model.onnx").read_bytes()
    assert second.seconds < 2.0


def test_two_clean_builds_are_byte_identical(tmp_path, keypair):
    for name in ("a", "b"):
        _compile(tmp_path, keypair, name=name, no_cache=True, options={"precision": "int8-static"})
    for file in ("model.onnx", "self_test.npz"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file


def test_defaults_find_bundled_data_and_create_a_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = edgeml.compile(str(DIGITS / "model.onnx"))
    assert result.out == tmp_path.joinpath("build", "digits-cpu-ort").relative_to(tmp_path)
    assert any("created a signing key" in n for n in result.notes)
    assert result.manifest["provenance"]["calibration"]["source"].endswith("calib.npz")
    assert result.manifest["provenance"]["evaluation"]["source"].endswith("eval.npz")


def test_a_manifest_reproduces_its_compile_as_a_recipe(tmp_path, keypair):
    first = _compile(tmp_path, keypair, name="a", min_cosine=0.995, options={"calibrate_method": "entropy"})
    recipe = first.manifest["provenance"]["recipe"]
    assert recipe["options"]["calibrate_method"] == "entropy" and recipe["budget"]["min_cosine"] == 0.995
    again = edgeml.compile(str(DIGITS / "model.onnx"), key=keypair[0], out=tmp_path / "b",
                           recipe_file=tmp_path / "a" / "manifest.json")  # fmt: skip
    assert again.manifest["provenance"]["recipe"] == recipe
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (tmp_path / "b" / "model.onnx").read_bytes()


def test_recipe_file_values_and_flag_overrides(tmp_path, keypair):
    (tmp_path / "r.toml").write_text('target = "cpu-ort"\ncalib_samples = 64\n[budget]\nmax_drop = 0.5\n'
                                     '[options]\nprecision = "fp32"\n')  # fmt: skip
    result = _compile(tmp_path, keypair, recipe_file=tmp_path / "r.toml", max_drop=2.0)
    recipe = result.manifest["provenance"]["recipe"]
    assert recipe["calib_samples"] == 64 and recipe["budget"]["max_drop"] == 2.0
    assert result.decision.chosen == "fp32"
    (tmp_path / "bad.toml").write_text("[options]\nwarp = 9\n")
    with pytest.raises(edgeml.EdgemlError, match="has no option 'warp'"):
        _compile(tmp_path, keypair, name="x", recipe_file=tmp_path / "bad.toml")

"""`edgeml explain ARTIFACT`: the per-layer report written into the artifact at compile time, rendered as a
table, as JSON and as a self-contained HTML page — for an INT8 artifact and for one that shipped float."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import edgeml

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def edgeml_cli(*args, cwd, check=True):
    env = os.environ | {"COLUMNS": "200"}
    return subprocess.run(["edgeml", *args], cwd=cwd, capture_output=True, text=True, check=check, env=env)


@pytest.fixture(scope="module")
def mixed_artifact(tmp_path_factory, keypair, sensitive_cnn):
    """A CNN whose Gemm head INT8 must damage on every CPU (tests/int8_sensitive_models.py), with a fidelity
    floor all-INT8 misses (cosine 0.972) and the head in float meets (0.9987): int8-mixed ships, head in float."""
    out = tmp_path_factory.mktemp("explain") / "mixed"
    edgeml.compile(
        str(sensitive_cnn.model), "cpu-ort", key=keypair[0], out=out, eval_data=sensitive_cnn.unlabelled,
        min_cosine=0.995, cache_dir=tmp_path_factory.mktemp("cache"),
        options={"arch": "x86_64", "min_speedup": 0, "objective": "size"},
    )  # fmt: skip
    return out


def test_explain_json_is_an_artifact_file_with_layers_top_offenders_first(mixed_artifact, keypair, tmp_path):
    m = edgeml.verify(mixed_artifact, keypair[1]).manifest
    assert m["explain"] == {"file": "explain.json"} and "explain.json" in {f["path"] for f in m["files"]}
    report = json.loads(edgeml_cli("explain", str(mixed_artifact), "--json", cwd=tmp_path).stdout)
    assert report["shipped"] == "int8-mixed" and report["sensitivity"] == "measured"
    assert {c["name"] for c in report["candidates"]} == {"fp32", "int8-static", "int8-mixed"}
    assert [c["name"] for c in report["candidates"] if c["shipped"]] == ["int8-mixed"]
    mixed, static = report["layers"]["int8-mixed"], report["layers"]["int8-static"]
    assert mixed[0]["layer"] == "head" and mixed[0]["precision"] == "float"
    assert mixed[0]["why"].startswith("kept in float by the accuracy-aware search")
    assert static[0]["layer"] == "head" and static[0]["precision"] == "int8"  # its rounding: the model's construction
    assert [r["sensitivity_rank"] for r in static] == list(range(1, len(static) + 1))
    row = static[0]
    assert {
        "sqnr_db",
        "cosine",
        "max_abs_err",
        "float_min",
        "float_max",
        "int8_min",
        "int8_max",
        "clipping_rate",
    } <= set(row)
    assert row["int8_min"] <= row["float_min"] and row["float_max"] <= row["int8_max"]
    conv = next(r for r in static if r["layer"] == "conv1")
    assert conv["op"] == "Conv+Relu"  # ONNX Runtime folded the Relu in: named as it runs


def test_explain_table_and_self_contained_html(mixed_artifact, tmp_path):
    shown = edgeml_cli("explain", str(mixed_artifact), "--html", "report.html", cwd=tmp_path).stdout
    assert "shipped int8-mixed" in shown and "layers of int8-mixed" in shown
    # NOTE: drawn as a table where it fits the width, else one block per row (`layer: head · …`): either reads.
    first_row = shown.split("layers of int8-mixed", 1)[1]
    assert re.search(r"│ head |layer: head ", first_row.split("layers of", 1)[0])
    assert "kept in float by the accuracy-aware search" in shown
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") >= 3  # the scatter, one SQNR bar chart per quantized candidate
    assert "<script" not in page and not re.search(r"(src|href)=['\"]?(https?:|//)", page)
    assert ">head<" in page and "int8-static" in page


def test_a_float_artifact_explains_why_int8_was_rejected(digits_artifact, tmp_path):
    report = json.loads(edgeml_cli("explain", str(digits_artifact), "--json", cwd=tmp_path).stdout)
    static = next(c for c in report["candidates"] if c["name"] == "int8-static")
    if report["shipped"] == "fp32":
        assert static["verdict"].startswith("rejected") and report["reason"].startswith("float kept")
    assert report["layers"]["int8-static"], "the rejected INT8 candidate still has its per-layer table"


def test_explain_refuses_a_tampered_or_missing_report(mixed_artifact, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(mixed_artifact, copy)
    (copy / "explain.json").write_text("{}")
    bad = edgeml_cli("explain", str(copy), cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "does not match its sha256" in bad.stderr
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if f["path"] != "explain.json"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    missing = json.loads(edgeml_cli("explain", str(copy), "--json", cwd=tmp_path, check=False).stdout)
    assert missing["ok"] is False and "holds no explain.json" in missing["error"]


def test_the_report_records_what_its_layer_analysis_cost(tmp_path, keypair):
    """64 calibration samples, its seconds beside the quantization's (≈ 0.5× measured on the wide CNN: a figure
    for benchmarks, not an assertion)."""
    result = edgeml.compile(
        str(DIGITS / "model_wide.onnx"), "cpu-ort", key=keypair[0], out=tmp_path / "w", no_cache=True,
        options={"precision": "int8-static"},
    )  # fmt: skip
    report = json.loads((tmp_path / "w" / "explain.json").read_text())
    analysis = report["analysis"]
    assert analysis["samples"] == 64 and analysis["seconds"] > 0 and analysis["quantize_seconds"] > 0
    assert result.decision.chosen == "int8-static"


def test_every_fidelity_figure_per_output_in_the_manifest_json_table_and_html(mixed_artifact, keypair, tmp_path):
    figures = {"cosine", "worst_channel_cosine", "worst_channel", "sqnr_db", "max_abs_err", "max_rel_err", "kind"}
    m = edgeml.verify(mixed_artifact, keypair[1]).manifest
    assert figures | {"top1_agreement"} <= set(m["metrics"]["fidelity"]["logits"])
    assert m["decision"]["budget"]["min_agreement"] == 0.99
    report = json.loads(edgeml_cli("explain", str(mixed_artifact), "--json", cwd=tmp_path).stdout)
    static = next(c for c in report["candidates"] if c["name"] == "int8-static")
    f = static["fidelity"]["logits"]
    assert figures <= set(f) and f["kind"] == "scores"
    assert static["worst_cosine"] == min(f["cosine"], f["worst_channel_cosine"])  # what the budget judged
    assert static["verdict"].startswith(f"rejected: output logits channel {f['worst_channel']} has cosine")
    shown = edgeml_cli("explain", str(mixed_artifact), "--html", "report.html", cwd=tmp_path).stdout
    assert "fidelity vs float per output" in shown and "max rel err" in shown and "SNR dB" in shown
    page = (tmp_path / "report.html").read_text()
    assert "Fidelity per output" in page and "max rel err" in page and "decisions agree" in page

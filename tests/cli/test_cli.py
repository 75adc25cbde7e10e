"""The README's commands, run as a user runs them (the installed `edgeml` script, real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def edgeml(*args, cwd, check=True):
    return subprocess.run(["edgeml", *args], cwd=cwd, capture_output=True, text=True, check=check, env=os.environ)


def test_readme_tour(tmp_path):
    digits = ROOT / "examples" / "digits"
    edgeml("keys", "create", "--out", "keys", cwd=tmp_path)
    out = edgeml(
        "compile", str(digits / "model.onnx"), "--target", "cpu-ort", "--calib", str(digits / "calib.npz"),
        "--eval", str(digits / "eval.npz"), "--key", "keys/signing.key", "--name", "digits", "--version", "1.0.0",
        "--out", "build/digits-cpu-ort", cwd=tmp_path,
    )  # fmt: skip
    assert "artifact build/digits-cpu-ort" in out.stdout and "shipped" in out.stdout
    assert "check cpu-ort" in out.stderr  # progress goes to stderr
    verified = edgeml("verify", "build/digits-cpu-ort", "--pubkey", "keys/signing.pub", cwd=tmp_path)
    assert "verified" in verified.stdout
    manifest = json.loads(edgeml("inspect", "build/digits-cpu-ort", "--json", cwd=tmp_path).stdout)
    assert manifest["name"] == "digits" and manifest["version"] == "1.0.0"
    assert "signature" in edgeml("inspect", "build/digits-cpu-ort", cwd=tmp_path).stdout
    bench = json.loads(
        edgeml(
            "bench",
            "build/digits-cpu-ort",
            "--baseline",
            str(digits / "model.onnx"),
            "--seconds",
            "0.3",
            "--json",
            cwd=tmp_path,
        ).stdout
    )
    assert bench["ratio"] > 0 and bench["latency"]["baseline"]["p50_ms"] > 0
    again = json.loads(
        edgeml(
            "compile",
            str(digits / "model.onnx"),
            "--out",
            "build/again",
            "--key",
            "keys/signing.key",
            "--json",
            cwd=tmp_path,
        ).stdout
    )
    assert again["cache"]["hits"] == again["cache"]["steps"]


def test_errors_are_messages_with_hints_and_exit_codes(tmp_path):
    bad = edgeml("compile", "missing.onnx", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "error: model missing.onnx does not exist" in bad.stderr and "hint:" in bad.stderr
    assert "Traceback" not in bad.stderr
    as_json = json.loads(edgeml("compile", "missing.onnx", "--json", cwd=tmp_path, check=False).stdout)
    assert as_json == {"ok": False, "error": "model missing.onnx does not exist", "kind": "ModelIntakeError",
                       "hint": as_json["hint"]}  # fmt: skip
    (tmp_path / "fake").mkdir()
    (tmp_path / "k.pub").write_text("nope")
    wrong = edgeml("verify", "fake", "--pubkey", "k.pub", "--json", cwd=tmp_path, check=False)
    assert wrong.returncode == 2 and json.loads(wrong.stdout)["ok"] is False


def test_targets_lists_cpu_ort(tmp_path):
    targets = json.loads(edgeml("targets", "--json", cwd=tmp_path).stdout)
    ids = [t["id"] for t in targets]
    assert ids[0] == "cpu-ort" and {"cpu-openvino", "npu-openvino"} <= set(ids)
    options = json.loads(edgeml("targets", "--options", "cpu-ort", "--json", cwd=tmp_path).stdout)
    assert {"precision", "calibrate_method", "min_speedup"} <= {o["name"] for o in options}


def test_a_pruned_compile_is_reproduced_from_its_manifest_recipe(tmp_path):
    """`--recipe build/a/manifest.json` takes the recipe the first compile recorded, [prune] included, and
    builds the same model: pruning, fine-tuning and export are deterministic."""
    digits = ROOT / "examples" / "digits"
    data = ["--calib", str(digits / "calib.npz"), "--eval", str(digits / "eval.npz")]
    edgeml("keys", "create", "--out", "keys", cwd=tmp_path)
    first = edgeml(
        "compile", str(digits / "model.pt2"), "--target", "cpu-ort", *data, "--prune", "magnitude:0.5",
        "--finetune", str(digits / "train.npz"), "--finetune-epochs", "1", "--precision", "fp32",
        "--key", "keys/signing.key", "--out", "build/a", "--no-cache", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert json.loads(first.stdout)["precision"] == "fp32"
    edgeml(
        "compile", str(digits / "model.pt2"), "--recipe", "build/a/manifest.json", *data,
        "--key", "keys/signing.key", "--out", "build/b", "--no-cache", "--json", cwd=tmp_path,
    )  # fmt: skip
    a, b = (json.loads((tmp_path / "build" / d / "manifest.json").read_text()) for d in ("a", "b"))
    assert b["provenance"]["recipe"] == a["provenance"]["recipe"]
    assert a["provenance"]["recipe"]["prune"]["spec"].startswith("magnitude:0.5")
    assert b["pruning"]["sparsity"] == a["pruning"]["sparsity"] and b["precision"] == "fp32"
    assert (tmp_path / "build/a/model.onnx").read_bytes() == (tmp_path / "build/b/model.onnx").read_bytes()

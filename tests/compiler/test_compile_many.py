"""One command, many targets: shared export, per-target options, one failure loses nothing else."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import edgeml

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"


def test_many_targets_with_a_failure_in_the_middle(tmp_path, keypair):
    result = edgeml.compile(
        str(DIGITS / "model.pt2"), ["cpu-ort", "npu-openvino", "cpu-openvino"], key=keypair[0], out=tmp_path,
        calib=DIGITS / "calib.npz", eval_data=DIGITS / "eval.npz",
        options={"cpu-ort.precision": "fp32", "cpu-openvino.precision": "fp32", "npu-openvino.shape": "x:1x3x8x8"},
    )  # fmt: skip
    assert set(result.results) == {"cpu-ort", "cpu-openvino"}  # npu-openvino was given a shape that does not fit
    assert "does not fit x: float32[" in result.failures["npu-openvino"].message
    for target in result.results:
        assert edgeml.verify(tmp_path / target, keypair[1]).manifest["target"]["id"] == target
    assert not (tmp_path / "npu-openvino").exists()
    # the export ran once: the second target found it in the cache
    assert result.results["cpu-openvino"].manifest["provenance"]["exporter"] == "dynamo"


def test_cli_scoped_options_and_json(tmp_path, keypair):
    out = subprocess.run(
        ["edgeml", "compile", str(DIGITS / "model.onnx"), "--targets", "cpu-ort,npu-openvino", "--key", str(keypair[0]),
         "--out", str(tmp_path / "multi"), "-O", "npu-openvino.shape=input:1x1x8x8", "-O", "cpu-ort.precision=fp32",
         "--json"],
        capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] and set(report["targets"]) == {"cpu-ort", "npu-openvino"}


def test_check_command_says_what_to_fix(tmp_path):
    out = subprocess.run(["edgeml", "check", str(DIGITS / "model.onnx"), "--target", "npu-openvino", "--json"],
                         capture_output=True, text=True, env=os.environ)  # fmt: skip
    report = json.loads(out.stdout)
    assert not report["ok"] and report["issues"][0]["fix"] == "-O shape=input:1x1x8x8"
    refused = subprocess.run(["edgeml", "check", str(DIGITS / "model.onnx"), "--target", "tflite-cpu"],
                             capture_output=True, text=True, env=os.environ)  # fmt: skip
    assert refused.returncode == 2 and "converts from PyTorch" in refused.stderr

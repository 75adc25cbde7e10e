"""Bad input: a clear error naming the culprit, a non-zero exit, and nothing half-written in --out."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeml
from edgeml.errors import (
    ArtifactError,
    CalibrationError,
    EdgemlError,
    ModelIntakeError,
    OutputExistsError,
    TargetError,
)

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
FACTORY = "examples.digits.digits_cnn:build"


def _compile(tmp_path, keypair, model=DIGITS / "model.onnx", **kwargs):
    kwargs.setdefault("calib", DIGITS / "calib.npz")
    return edgeml.compile(str(model), kwargs.pop("target", "cpu-ort"), key=keypair[0], out=tmp_path / "out", **kwargs)


def _calib(tmp_path, array):
    np.savez(tmp_path / "c.npz", input=array)
    return tmp_path / "c.npz"


def _broken_onnx(tmp_path):
    model = onnx.load(DIGITS / "model.onnx")
    model.graph.node[0].input[0] = "no_such_tensor"
    path = tmp_path / "broken.onnx"
    path.write_bytes(model.SerializeToString())
    return path


CASES = {
    "missing model": (lambda t: {"model": t / "nope.onnx"}, ModelIntakeError, "does not exist"),
    "not a model": (lambda t: {"model": _write(t / "m.onnx", b"hello")}, ModelIntakeError, "not an ONNX model"),
    "fails checker": (lambda t: {"model": _broken_onnx(t)}, ModelIntakeError, "fails the ONNX checker"),
    "unknown format": (lambda t: {"model": _write(t / "m.h5", b"x")}, ModelIntakeError, "unknown model format"),
    "state dict": (lambda t: {"model": DIGITS / "weights.pt"}, ModelIntakeError, "not TorchScript"),
    "factory import": (lambda t: {"model": "nosuch.module:build"}, ModelIntakeError, "cannot import module"),
    "shape mismatch": (
        lambda t: {"calib": _calib(t, np.zeros((4, 1, 28, 28), np.float32))},
        CalibrationError, r"input 'input': samples of shape \[1, 28, 28\]",
    ),
    "dtype mismatch": (lambda t: {"calib": _calib(t, np.zeros((4, 1, 8, 8)))}, CalibrationError, "dtype float64"),
    "empty calib": (lambda t: {"calib": _calib(t, np.zeros((0, 1, 8, 8), np.float32))}, CalibrationError, "empty"),
    "nan calib": (lambda t: {"calib": _calib(t, np.full((4, 1, 8, 8), np.nan, np.float32))}, CalibrationError, "NaN"),
    "unknown target": (lambda t: {"target": "tpu-9000"}, TargetError, "unknown target 'tpu-9000'"),
    "unknown option": (lambda t: {"options": {"warp": "9"}}, TargetError, "has no option 'warp'"),
    "bad option value": (lambda t: {"options": {"per_channel": "maybe"}}, TargetError, "not a bool"),
    "bad choice": (lambda t: {"options": {"precision": "int3"}}, TargetError, "is not one of"),
    "bad budget": (lambda t: {"max_drop": -1}, EdgemlError, "--max-drop"),
    "bad version": (lambda t: {"version": "v1"}, EdgemlError, "MAJOR.MINOR.PATCH"),
    "prune an ONNX file": (lambda t: {"prune": "channels:0.3"}, ModelIntakeError, "pruning needs the PyTorch model"),
    "prune ratio": (lambda t: {"model": FACTORY, "prune": "channels:0"}, EdgemlError, "out of range"),
    "prune kind": (lambda t: {"model": FACTORY, "prune": "random:0.3"}, EdgemlError, "is not KIND:RATIO"),
    "finetune alone": (lambda t: {"finetune": DIGITS / "train.npz"}, EdgemlError, "--prune, which is not set"),
    "prune a traced graph": (
        lambda t: {"model": DIGITS / "model.pt2", "prune": "channels:0.3"},
        ModelIntakeError, "needs the model as an nn.Module",
    ),
    "prune for a PyTorch-converting target": (
        lambda t: {"model": FACTORY, "prune": "magnitude:0.5", "target": "tflite-cpu"},
        TargetError, "converts from the PyTorch",
    ),
}  # fmt: skip


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_leaves_nothing(tmp_path, keypair, case, monkeypatch):
    monkeypatch.chdir(ROOT)
    make, error, message = CASES[case]
    with pytest.raises(error, match=message):
        _compile(tmp_path, keypair, **make(tmp_path))
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_no_calibration_data_asks_for_it(tmp_path, keypair):
    shutil.copy(DIGITS / "model.onnx", tmp_path / "model.onnx")
    with pytest.raises(CalibrationError, match="no calibration data") as info:
        edgeml.compile(str(tmp_path / "model.onnx"), key=keypair[0], out=tmp_path / "out")
    assert "--calib" in info.value.hint


def test_existing_output_is_kept_without_force(tmp_path, keypair):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="--force"):
        _compile(tmp_path, keypair)
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny tmpfs to fill up needs root (CI runs as root)")
def test_a_really_full_disk_leaves_no_partial_artifact(tmp_path, keypair):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(disk)], check=True)
    try:
        with pytest.raises(ArtifactError, match="disk filled up"):
            edgeml.compile(str(DIGITS / "model.onnx"), key=keypair[0], out=disk / "out", calib=DIGITS / "calib.npz")
        assert os.listdir(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)

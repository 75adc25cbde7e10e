"""Each model source kind compiles: .pt2, TorchScript, and a module:function factory (real torch export)."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgeml

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


@pytest.mark.parametrize(
    ("source", "exporter"),
    [
        (str(DIGITS / "model.pt2"), "dynamo"),
        (str(DIGITS / "model.torchscript.pt"), "torchscript"),
        ("examples.digits.digits_cnn:build", "dynamo"),
    ],
)
def test_pytorch_sources_compile(tmp_path, keypair, monkeypatch, source, exporter):
    monkeypatch.chdir(ROOT)  # factories import from the working folder
    edgeml.compile(
        source, "cpu-ort", key=keypair[0], out=tmp_path / "out", calib=DIGITS / "calib.npz",
        eval_data=DIGITS / "eval.npz", options={"precision": "fp32"},
    )  # fmt: skip
    m = edgeml.verify(tmp_path / "out", keypair[1]).manifest
    assert m["provenance"]["exporter"] == exporter
    assert m["metrics"]["accuracy"] >= 95.0
    assert m["io"]["outputs"][0]["name"] == "output" and m["io"]["inputs"][0]["shape"][1:] == [1, 8, 8]


def test_pt2_export_is_cached(tmp_path, keypair):
    common = dict(key=keypair[0], options={"precision": "fp32"}, calib=DIGITS / "calib.npz")
    edgeml.compile(str(DIGITS / "model.pt2"), out=tmp_path / "a", **common)
    again = edgeml.compile(str(DIGITS / "model.pt2"), out=tmp_path / "b", **common)
    assert again.fully_cached

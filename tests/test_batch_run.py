"""`edgeml run`: an artifact over a dataset → predictions with the input's ids in .npz, .csv and .jsonl, equal to
the runtime adapter's own outputs; an unverifiable artifact is refused before anything runs; an interrupted run
resumes after the last block written and ends with the same predictions as an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import edgeml.batch.batch_run as batch_run
from edgeml.artifact import create_keypair
from edgeml.batch import run_artifact
from edgeml.cli import main
from edgeml.errors import EdgemlError
from edgeml.runtimes import open_session

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"


@pytest.fixture
def data(tmp_path):
    z = np.load(DIGITS / "eval.npz")
    path = tmp_path / "data.npz"
    np.savez(path, input=z["input"][:150], ids=np.arange(1000, 1150))
    return path


def test_predictions_match_the_runtime_in_every_format(tmp_path, digits_artifact, keypair, data):
    summary = run_artifact(digits_artifact, data, tmp_path / "p.npz", keypair[1], batch_size=16)
    assert summary.samples == 150 and summary.resumed_from == 0 and summary.p50_batch_ms > 0
    session = open_session("onnxruntime", digits_artifact / "model.onnx")
    expected = session.run({"input": np.load(data)["input"]})["logits"]
    with np.load(tmp_path / "p.npz") as z:
        assert list(z["ids"][:3]) == [1000, 1001, 1002]
        np.testing.assert_allclose(z["logits"], expected, rtol=1e-5, atol=1e-5)
    run_artifact(digits_artifact, data, tmp_path / "p.jsonl", keypair[1])
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 150 and rows[0]["id"] == 1000
    np.testing.assert_allclose(rows[5]["logits"], expected[5], rtol=1e-5, atol=1e-5)
    result = CliRunner().invoke(main, ["run", str(digits_artifact), str(data), "--out", str(tmp_path / "p.csv"),
                                       "--pubkey", str(keypair[1])])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "150 predictions" in result.output and "samples/s" in result.output
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].startswith("id,logits[0]") and lines[1].startswith("1000,") and len(lines) == 151
    assert not (tmp_path / "p.csv.partial").exists()


def test_a_foreign_key_is_refused_before_anything_runs(tmp_path, digits_artifact, data):
    other = create_keypair(tmp_path / "other")
    with pytest.raises(EdgemlError):
        run_artifact(digits_artifact, data, tmp_path / "p.npz", other[1])
    assert not (tmp_path / "p.npz").exists()


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, digits_artifact, keypair, data, monkeypatch):
    monkeypatch.setattr(batch_run, "BLOCK_SAMPLES", 32)
    full = run_artifact(digits_artifact, data, tmp_path / "full.npz", keypair[1], batch_size=8)

    def interrupt(done, total):
        if done >= 70:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_artifact(digits_artifact, data, tmp_path / "p.npz", keypair[1], batch_size=8, progress=interrupt)
    assert not (tmp_path / "p.npz").exists()
    resumed = run_artifact(digits_artifact, data, tmp_path / "p.npz", keypair[1], batch_size=8)
    assert resumed.resumed_from == 64  # two blocks of 32 were written before the interruption
    with np.load(tmp_path / "p.npz") as a, np.load(tmp_path / "full.npz") as b:
        np.testing.assert_array_equal(a["ids"], b["ids"])
        np.testing.assert_allclose(a["logits"], b["logits"], rtol=1e-6, atol=1e-6)
    assert full.samples == resumed.samples == 150

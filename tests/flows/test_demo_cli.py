"""`edgeml demo --json` through the real CLI: a retraining request resolved by a new release that reached every
device through a canary, and an MLflow store whose aliases match the fleet."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

pytest.importorskip("prefect")
pytest.importorskip("mlflow")
pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_demo_closes_the_loop(tmp_path, broker):
    env = os.environ | {"EDGEML_DIGITS_RETRAIN_EPOCHS": "15"}
    out = subprocess.run(
        ["edgeml", "demo", "--json", "--devices", "4", "--broker", broker.url, "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, env=env, timeout=1500,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    s = json.loads(out.stdout)
    new = s["retrained_release"]
    assert s["request"]["state"] == "resolved" and s["flow"]["state"] == "resolved"
    assert new["rollout_state"] == "completed" and new["waves"][0]["size"] < sum(w["size"] for w in new["waves"])
    assert set(s["devices"]["versions"].values()) == {new["release"].split("@")[1]}
    assert set(s["mlflow"]["aliases"]) == {"production"}
    assert (tmp_path / "demo" / "report.html").exists()

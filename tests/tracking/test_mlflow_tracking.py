"""MLflow tracking against a real local SQLite store: a compile through the CLI becomes a run (recipe and budget
as params, every candidate's figures as metrics, the decision as tags, manifest/explain/HTML and the signed
folder as artifacts) and one registered model version; the fleet's rollouts become registry aliases."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from tests.conftest import DIGITS

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("EDGEML_MLFLOW", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_compile_with_mlflow_logs_a_run_and_registers_the_artifact(tmp_path, store, keypair):
    from edgeml.cli import main
    from edgeml.tracking import open_client

    args = ["compile", str(DIGITS / "model.onnx"), "--target", "cpu-ort", "--key", str(keypair[0]), "--version",
            "1.2.0", "--out", str(tmp_path / "digits"), "--json", "--mlflow", store]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    tracked = json.loads(result.stdout)["mlflow"][0]
    assert tracked["model_name"] == "digits" and tracked["model_version"] == "1"

    client = open_client(store)
    run = client.get_run(tracked["run_id"])
    assert run.data.params["target"] == "cpu-ort" and run.data.params["budget.max_drop"] == "1.0"
    explain = json.loads((tmp_path / "digits" / "explain.json").read_text())
    for cand in explain["candidates"]:
        for metric in ("latency_p50_ms", "size_bytes", "fidelity_cosine", "accuracy"):
            assert f"{cand['name']}.{metric}" in run.data.metrics
    assert run.data.tags["edgeml.decision.chosen"] == explain["shipped"]
    assert run.data.tags["edgeml.version"] == "1.2.0"
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"manifest.json", "explain.json", "explain.html", "artifact"} <= logged
    assert "artifact/manifest.json" in {a.path for a in client.list_artifacts(run.info.run_id, "artifact")}
    mv = client.get_model_version("digits", "1")
    assert mv.tags["edgeml.version"] == "1.2.0" and mv.tags["edgeml.target"] == "cpu-ort"


def test_without_the_flag_nothing_is_tracked(tmp_path, store, keypair, monkeypatch):
    from edgeml.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # NOTE: a server named alone does not turn tracking on
    args = ["compile", str(DIGITS / "model.onnx"), "--target", "cpu-ort", "--key", str(keypair[0]),
            "--out", str(tmp_path / "digits"), "--json"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "mlflow" not in json.loads(result.stdout)
    assert not (tmp_path / "mlflow.db").exists()


def test_fleet_rollouts_move_registry_aliases(tmp_path, store, keypair, releases):
    from edgeml.artifact import load_private_key
    from edgeml.fleet import Fleet, RolloutPlan
    from edgeml.fleet.lifecycles import Moved
    from edgeml.protocol import Hello
    from edgeml.tracking import FleetAliasMirror, aliases, log_compile, open_client, reconcile

    fleet = Fleet(tmp_path / "fleet.sqlite", tmp_path / "store", load_private_key(keypair[0]))
    fleet.devices.on_hello(Hello("cam-1", "cpu-ort", "t", 10**9, {"onnxruntime": "1"}, None), time.time())
    old = fleet.artifacts.publish(releases["1.2.3"], time.time())
    new = fleet.artifacts.publish(releases["1.3.0"], time.time())
    log_compile(releases["1.3.0"], store)  # tracked at compile time; 1.2.3 was not: the mirror registers it
    plan = RolloutPlan.build("100%", "", "0s", "60s", [])
    r1 = fleet.rollouts.create(old["sha256"], "all", plan, time.time())
    with fleet.db.transaction() as tx:
        tx.execute("UPDATE rollouts SET state='completed', wave=0 WHERE id=?", (r1["id"],))
    r2 = fleet.rollouts.create(new["sha256"], "all", plan, time.time() + 1)
    fleet.rollouts.tick(time.time() + 2)  # exposes the canary wave of r2
    client = open_client(store)
    reconcile(fleet, store)
    versions = {mv.tags["edgeml.version"]: str(mv.version) for mv in client.search_model_versions("name='digits'")}
    assert aliases(client, "digits") == {"production": versions["1.2.3"], "canary": versions["1.3.0"]}
    assert len(versions) == 2  # the compile-time registration was found, not duplicated

    mirror = FleetAliasMirror(fleet, store)  # what `fleet serve --mlflow` runs on every rollout move
    try:
        mirror.notify([Moved("rollout", (r2["id"],), "abort", "aborted")])
        fleet.rollouts.abort(r2["id"], "operator", time.time() + 3)
        mirror.notify([Moved("rollout", (r2["id"],), "abort", "aborted")])
        assert mirror.wait_idle(60)
    finally:
        mirror.stop()
    assert aliases(client, "digits") == {"production": versions["1.2.3"], "rolled_back": versions["1.3.0"]}

"""The closed loop with real parts: a real Mosquitto, the fleet service, a real device agent and simulated devices,
real Prefect (ephemeral API) and a real MLflow store. Drift opens a request; the flow stops with its reason when
the new model is not good enough; killed with SIGKILL mid-rollout and run again, it finishes without a second
release or a second rollout, every device runs the retrained release, the request is resolved and the registry's
aliases match the fleet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import DIGITS, ROOT

pytest.importorskip("prefect")
pytest.importorskip("mlflow")
pytestmark = [pytest.mark.broker, pytest.mark.slow]

HOOK = "examples.digits.retrain_hook:retrain"


@pytest.fixture
def world(tmp_path, keypair, broker, releases, monkeypatch):
    from edgeml.demo.local_fleet import LocalFleet
    from edgeml.fleet import RolloutPlan

    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("EDGEML_DIGITS_RETRAIN_EPOCHS", "6")  # NOTE: orchestration under test, not accuracy
    w = LocalFleet(tmp_path / "fleet", keypair[0], DIGITS, devices=3, broker_url=broker.url).start()
    try:
        w.wait(lambda: len(w.fleet.devices.select()) == 4, 60, "devices registered")
        v1 = w.fleet.artifacts.publish(releases["1.2.3"], time.time())
        r = w.fleet.rollouts.create(v1["sha256"], "target=cpu-ort", RolloutPlan.build("100%", "", "1s", "2m", []),
                                    time.time())  # fmt: skip
        w.wait(lambda: w.fleet.rollouts.status(r["id"])["state"] == "completed", 120, "first rollout")
        yield w
    finally:
        w.stop()


def _settings(world, tmp_path, keypair, work: str, **bar):
    from edgeml.flows import RetrainSettings

    return RetrainSettings(
        str(world.db_path), str(world.store_path), HOOK, key=str(keypair[0]), work_dir=str(tmp_path / work),
        mlflow=f"sqlite:///{tmp_path / 'mlflow.db'}", canary="34%", waves="100%", bake="1s", deadline="2m",
        rollout_timeout_s=240, poll_s=0.5, **bar,
    )  # fmt: skip


def _request(world) -> str:
    world.inject_drift(0.4, "1.2.3")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        time.sleep(1.5)
        if world.fleet.retraining.scan(time.time()):
            return world.fleet.retraining.list()[0]["id"]
    raise AssertionError("no retraining request")


def test_drift_to_retrained_release_on_every_device(world, tmp_path, keypair):
    from edgeml.flows import FlowLedger, run_retrain
    from edgeml.tracking import aliases, open_client, reconcile
    from edgeml.tracking.registry_aliases import manifest_digest

    rid = _request(world)

    # a bar the new model cannot clear: the flow stops, says why, and publishes nothing
    stopped = run_retrain(rid, _settings(world, tmp_path, keypair, "strict", min_gain=1000.0))
    assert stopped["state"] == "stopped" and "gains" in stopped["reason"]
    assert [a["version"] for a in world.fleet.artifacts.all()] == ["1.2.3"] and len(world.fleet.rollouts.list()) == 1

    # a first run, killed (SIGKILL) once its rollout exists
    settings = _settings(world, tmp_path, keypair, "work", min_gain=-100.0, max_drop=100.0)
    (tmp_path / "settings.json").write_text(json.dumps(settings.__dict__))
    code = (
        f"import json, pathlib; from edgeml.flows import run_retrain, RetrainSettings; run_retrain({rid!r}, "
        f"RetrainSettings(**json.loads(pathlib.Path({str(tmp_path / 'settings.json')!r}).read_text())))"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    ledger = FlowLedger(settings.ledger_path())
    try:
        world.wait(lambda: proc.poll() is not None or ledger.done(rid, "rollout") is not None, 400, "rollout step")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert ledger.done(rid, "rollout") is not None, "the first run ended before its rollout step"

    run = run_retrain(rid, settings)  # the re-run resumes: same release, same rollout
    assert run["state"] == "resolved", run["reason"]
    assert run["attempts"] == 2
    version = run["steps"]["version"]["version"]
    sha = run["steps"]["publish"]["sha256"]
    assert [a["version"] for a in world.fleet.artifacts.all() if a["version"] == version] == [version]
    assert [r["id"] for r in world.fleet.rollouts.list() if r["artifact_sha"] == sha] == [
        run["steps"]["rollout"]["rollout_id"]
    ]
    world.wait(lambda: set(world.versions().values()) == {version}, 60, "every device on the retrained release")
    assert next(r for r in world.fleet.retraining.list() if r["id"] == rid)["state"] == "resolved"

    client = open_client(settings.mlflow)
    reconcile(world.fleet, settings.mlflow)
    published = world.fleet.artifacts.get(sha)["manifest"]
    registered = {
        mv.tags["edgeml.manifest_sha256"]: str(mv.version) for mv in client.search_model_versions("name='digits'")
    }
    # the strict run's 1.3.0 (compiled, tracked, never published) is its own version: production is the one shipped
    assert aliases(client, "digits") == {"production": registered[manifest_digest(published)]}

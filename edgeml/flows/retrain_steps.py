"""The retraining flow's steps as plain functions over the fleet and the ledger (retrain_flow.py makes each a
Prefect task). Each returns the JSON-able result the ledger keeps, and reuses what an earlier, interrupted
run already made: the evidence folder, the trained model, the reserved version, the published artifact and
the rollout (found by the artifact's sha256, so a crash between creating it and recording it duplicates
nothing)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from edgeml.flows.retrain_settings import RetrainSettings
from edgeml.flows.training_hook import TrainingHookError, TrainingRequest, call_training_hook

__all__ = [
    "compile_release",
    "evaluate_release",
    "export_evidence",
    "open_fleet",
    "publish_release",
    "reserve_version",
    "resolve_request",
    "start_rollout",
    "train_model",
    "wait_for_rollout",
]


def open_fleet(settings: RetrainSettings):
    from edgeml.artifact import load_private_key
    from edgeml.fleet import Fleet
    from edgeml.locations import default_key_path

    return Fleet(settings.db, settings.store, load_private_key(settings.key or default_key_path()))


def request_row(fleet, request_id: str) -> dict[str, Any]:
    from edgeml.fleet.database import FleetNotFoundError

    found = [r for r in fleet.retraining.list() if r["id"] == request_id]
    if not found:
        raise FleetNotFoundError(f"no retraining request {request_id}", "see `edgeml fleet retrain list`")
    return found[0]


def export_evidence(settings: RetrainSettings, request_id: str) -> dict[str, Any]:
    fleet = open_fleet(settings)
    folder = settings.work_root() / request_id / "evidence"
    shutil.rmtree(folder, ignore_errors=True)  # NOTE: a half-written export from an interrupted run
    fleet.retraining.export(request_id, folder)
    replaced = fleet.artifacts.get(request_row(fleet, request_id)["artifact_sha"])
    (folder / "replaced-manifest.json").write_text(json.dumps(replaced["manifest"], indent=1) + "\n")
    return {"folder": str(folder), "replaced_sha": replaced["sha256"], "replaced": _release(replaced)}


def train_model(settings: RetrainSettings, request_id: str, evidence: dict[str, Any]) -> dict[str, Any]:
    folder = Path(evidence["folder"])
    out = settings.work_root() / request_id / "model"
    shutil.rmtree(out, ignore_errors=True)
    request = TrainingRequest(
        json.loads((folder / "request.json").read_text()), folder,
        json.loads((folder / "replaced-manifest.json").read_text()), out,
    )  # fmt: skip
    result = call_training_hook(settings.hook, request)
    if result.drifted is None:
        raise TrainingHookError(
            f"training hook {settings.hook} returned no drifted samples",
            "return TrainingResult(model=..., drifted='labelled.npz'): the flow only rolls out a model that "
            "does better than production on data like the drifted traffic",
        )
    return result.to_dict()


def reserve_version(settings: RetrainSettings, evidence: dict[str, Any]) -> dict[str, Any]:
    """The next minor version after the replaced one that the fleet has not published (recorded before the
    compile, so every re-run builds the same version)."""
    fleet = open_fleet(settings)
    name, version = evidence["replaced"]["name"], evidence["replaced"]["version"]
    major, minor, *_ = (int(p) for p in version.split("-")[0].split("+")[0].split("."))
    while True:
        minor += 1
        candidate = f"{major}.{minor}.0"
        if not _published(fleet, name, candidate):
            return {"name": name, "version": candidate}


def _published(fleet, name: str, version: str) -> bool:
    from edgeml.fleet.database import FleetError

    try:
        return bool(fleet.artifacts.find(f"{name}@{version}"))
    except FleetError:  # NOTE: find says "no published artifact matches" by raising
        return False


def compile_release(
    settings: RetrainSettings, request_id: str, evidence: dict[str, Any], trained: dict[str, Any], reserved: dict
) -> dict[str, Any]:
    import edgeml

    folder = Path(evidence["folder"])
    replaced = json.loads((folder / "replaced-manifest.json").read_text())
    out = settings.work_root() / request_id / "artifact"
    calib = trained["calib"] or _existing(replaced["provenance"]["calibration"]["source"])
    result = edgeml.compile(
        trained["model"], replaced["target"]["id"], recipe_file=str(folder / "replaced-manifest.json"),
        name=reserved["name"], version=reserved["version"], out=str(out), force=out.exists(), calib=calib,
        eval_data=trained["eval"] or _existing(replaced["provenance"]["evaluation"]["source"]), key=settings.key,
    )  # fmt: skip
    return {"artifact": str(out), "version": reserved["version"], "decision": result.decision.chosen}


def evaluate_release(
    settings: RetrainSettings, evidence: dict[str, Any], trained: dict[str, Any], compiled: dict[str, Any]
) -> dict[str, Any]:
    from edgeml.flows.compare_models import compare

    fleet = open_fleet(settings)
    production = fleet.artifacts.path(evidence["replaced_sha"])
    original = trained["eval"] or _existing(_replaced(evidence)["provenance"]["evaluation"]["source"])
    verdict = compare(production, compiled["artifact"], trained["drifted"], original, settings.min_gain,
                      settings.max_drop)  # fmt: skip
    return verdict.to_dict()


def track_release(settings: RetrainSettings, compiled: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """Log the compile (run + registered version) and the comparison to MLflow, when tracking was asked for."""
    from edgeml.tracking.tracking_store import tracking_requested

    uri = tracking_requested(settings.mlflow)
    if uri is None:
        return {"tracked": False}
    from edgeml.tracking import log_compile, open_client

    tracked = log_compile(compiled["artifact"], uri)
    client = open_client(uri)
    for data, acc in evaluation["accuracy"].items():
        for model, value in acc.items():
            client.log_metric(tracked.run_id, f"retrain.{data}.{model}_accuracy", value)
    client.set_tag(tracked.run_id, "edgeml.retrain.verdict", evaluation["reason"][:5000])
    return {"tracked": True} | tracked.to_dict()


def publish_release(settings: RetrainSettings, compiled: dict[str, Any]) -> dict[str, Any]:
    a = open_fleet(settings).artifacts.publish(compiled["artifact"], time.time())  # NOTE: by content: idempotent
    return {"sha256": a["sha256"], "release": f"{a['name']}@{a['version']}", "target": a["target"]}


def start_rollout(settings: RetrainSettings, published: dict[str, Any]) -> dict[str, Any]:
    from edgeml.fleet import RolloutPlan

    fleet = open_fleet(settings)
    existing = fleet.db.query(
        "SELECT id FROM rollouts WHERE artifact_sha=? ORDER BY created_at DESC LIMIT 1", (published["sha256"],)
    )
    if existing:
        return {"rollout_id": existing[0][0], "reused": True}
    plan = RolloutPlan.build(settings.canary, settings.waves, settings.bake, settings.deadline, list(settings.gates))
    r = fleet.rollouts.create(published["sha256"], f"target={published['target']}", plan, time.time())
    return {"rollout_id": r["id"], "reused": False, "devices": len(r["executions"])}


def wait_for_rollout(settings: RetrainSettings, rollout: dict[str, Any]) -> dict[str, Any]:
    """Until the rollout completes or aborts (the fleet service moves it), or `rollout_timeout_s` passes."""
    fleet = open_fleet(settings)
    deadline = time.monotonic() + settings.rollout_timeout_s
    while True:
        status = fleet.rollouts.status(rollout["rollout_id"])
        if status["state"] in ("completed", "aborted") or time.monotonic() >= deadline:
            return {"state": status["state"], "reason": status["reason"], "waves": status["waves"]}
        time.sleep(settings.poll_s)


def resolve_request(settings: RetrainSettings, request_id: str) -> dict[str, Any]:
    fleet = open_fleet(settings)
    changed = fleet.retraining.resolve(request_id)
    return {"resolved": True, "changed": changed}


def mirror_aliases(settings: RetrainSettings) -> dict[str, Any]:
    from edgeml.tracking.tracking_store import tracking_requested

    uri = tracking_requested(settings.mlflow)
    if uri is None:
        return {}
    from edgeml.tracking import reconcile

    return reconcile(open_fleet(settings), uri)


def _replaced(evidence: dict[str, Any]) -> dict[str, Any]:
    return json.loads((Path(evidence["folder"]) / "replaced-manifest.json").read_text())


def _release(artifact: dict[str, Any]) -> dict[str, Any]:
    return {k: artifact[k] for k in ("name", "version", "release", "target")}


def _existing(path: str | None) -> str | None:
    return path if path and Path(path).exists() else None

"""A finished compile → one MLflow run and one registered model version.

Run: the recipe and budget as params; every candidate's latency, size, fidelity (worst cosine) and accuracy
as metrics (`<candidate>.latency_p50_ms`, …); the decision as tags; manifest.json, explain.json, the HTML
report and the signed artifact folder as artifacts. Registry: the signed artifact as a version of the model
named after the artifact, tagged with its version, release, target and key, so the fleet's aliases can find
it (registry_aliases.py). The signed artifact stays the unit of deployment; MLflow only records it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeml.tracking.mlflow_client import TrackingError, experiment_id, open_client
from edgeml.tracking.registry_aliases import register_artifact

__all__ = ["EXPERIMENT", "TrackedCompile", "log_compile"]

EXPERIMENT = "edgeml-compile"
_CANDIDATE_METRICS = {"latency_p50_ms": "latency_p50_ms", "size_bytes": "size_bytes", "worst_cosine": "fidelity_cosine",
                      "accuracy": "accuracy", "speedup": "speedup"}  # fmt: skip


@dataclass(frozen=True)
class TrackedCompile:
    run_id: str
    model_name: str
    model_version: str
    tracking_uri: str

    def to_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "model_name": self.model_name, "model_version": self.model_version,
                "tracking_uri": self.tracking_uri}  # fmt: skip


def log_compile(result: Any, uri: str | None = None, experiment: str = EXPERIMENT) -> TrackedCompile:
    """Log a compile as a run in `experiment` and register its artifact; see the module doc. `result` is a
    CompileResult or the artifact folder it wrote (everything logged is read from the signed folder)."""
    client = open_client(uri)
    out = Path(getattr(result, "out", result))
    manifest = json.loads((out / "manifest.json").read_text())
    explain = _explain(out)
    try:
        run = client.create_run(experiment_id(client, experiment), run_name=_run_name(manifest), tags=_tags(manifest))
        run_id = run.info.run_id
        _log_values(client, run_id, manifest, explain)
        _log_files(client, run_id, out, manifest, explain)
        version = register_artifact(client, manifest, f"{run.info.artifact_uri}/artifact", run_id)
        client.set_terminated(run_id)
    except TrackingError:
        raise
    except Exception as exc:  # MLflow raises its own and requests' errors: one message that says where
        raise TrackingError(
            f"could not log the compile of {manifest['name']}@{manifest['version']} to {client.tracking_uri}: {exc}",
            "check the tracking server (or --mlflow URI); the artifact itself was written and is unaffected",
        ) from exc
    return TrackedCompile(run_id, manifest["name"], version, client.tracking_uri)


def _run_name(manifest: dict[str, Any]) -> str:
    return f"{manifest['name']}@{manifest['version']} {manifest['target']['id']}"


def _tags(m: dict[str, Any]) -> dict[str, str]:
    decision = m.get("decision", {})
    tags = {
        "edgeml.artifact": m["name"],
        "edgeml.version": m["version"],
        "edgeml.release": str(m["release"]),
        "edgeml.target": m["target"]["id"],
        "edgeml.decision.chosen": str(decision.get("chosen", "")),
        "edgeml.decision.reason": str(decision.get("reason", ""))[:5000],
        "edgeml.key_id": m["signature"]["key_id"],
        "edgeml.source_sha256": m["provenance"]["source"]["sha256"],
    }
    tags |= {f"edgeml.verdict.{cand}": str(v)[:5000] for cand, v in decision.get("verdicts", {}).items()}
    return tags


def _log_values(client: Any, run_id: str, manifest: dict[str, Any], explain: dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param

    recipe = manifest["provenance"].get("recipe", {})
    params = {"target": recipe.get("target", manifest["target"]["id"]), "calib_samples": recipe.get("calib_samples")}
    params |= {f"budget.{k}": v for k, v in recipe.get("budget", {}).items()}
    params |= {f"recipe.{k}": v for k, v in recipe.get("options", {}).items()}
    params |= {f"prune.{k}": v for k, v in recipe.get("prune", {}).items()}
    now = _now_ms()
    metrics = []
    for cand in explain.get("candidates", []):
        metrics += [
            Metric(f"{cand['name']}.{name}", float(cand[key]), now, 0)
            for key, name in _CANDIDATE_METRICS.items()
            if isinstance(cand.get(key), (int, float))
        ]
    shipped = _numbers({k: v for k, v in manifest.get("metrics", {}).items() if k != "measured_on"})
    metrics += [Metric(f"shipped.{k}", v, now, 0) for k, v in shipped.items()]
    params_list = [Param(k, _param(v)) for k, v in params.items() if v is not None]
    client.log_batch(run_id, metrics=metrics, params=params_list)


def _log_files(client: Any, run_id: str, out: Path, manifest: dict[str, Any], explain: dict[str, Any]) -> None:
    from edgeml.compiler.explain_html import render_html

    client.log_artifacts(run_id, str(out), "artifact")  # NOTE: the signed folder as written, byte for byte
    client.log_artifact(run_id, str(out / "manifest.json"))
    if (out / "explain.json").exists():
        client.log_artifact(run_id, str(out / "explain.json"))
        with tempfile.TemporaryDirectory(prefix="edgeml-mlflow-") as tmp:
            html = Path(tmp) / "explain.html"
            html.write_text(render_html(explain, manifest), encoding="utf-8")
            client.log_artifact(run_id, str(html))


def _explain(out: Path) -> dict[str, Any]:
    path = out / "explain.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _numbers(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of `tree` as dotted names (`latency_ms.p50_ms`, `fidelity.logits.cosine`)."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _numbers(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:6000]  # NOTE: MLflow caps a param value at 6000 characters


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)

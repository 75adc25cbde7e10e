"""The fleet's rollouts → registry aliases, recomputed from the fleet database (never from one event).

`reconcile(fleet, uri)` reads every rollout and points, per artifact name: `production` at the artifact of
the newest completed rollout, `canary` at the artifact a running or paused rollout exposes (removed when
none does), `rolled_back` at the artifact of the newest aborted rollout. Being a pure function of the fleet's
state, it is idempotent and catches up on whatever happened while it was not running (an abort from the
CLI, a service restart). `FleetAliasMirror` runs it on a background thread whenever a rollout moves, so a
slow tracking server never holds up the fleet's worker.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from edgeml.tracking.mlflow_client import open_client
from edgeml.tracking.registry_aliases import register_artifact, set_alias

__all__ = ["FleetAliasMirror", "fleet_aliases", "reconcile"]

log = logging.getLogger(__name__)


def fleet_aliases(fleet: Any) -> dict[str, dict[str, dict[str, Any] | None]]:
    """name → alias → the artifact row (sha256, version, target, manifest) it should point at, or None."""
    rows = fleet.db.query(
        "SELECT r.state, r.wave, a.sha256, a.name, a.version, a.target, a.manifest FROM rollouts r "
        "JOIN artifacts a ON a.sha256 = r.artifact_sha ORDER BY r.created_at, r.id"
    )
    wanted: dict[str, dict[str, dict[str, Any] | None]] = {}
    for r in rows:
        per = wanted.setdefault(r["name"], {"canary": None, "production": None, "rolled_back": None})
        artifact = {k: r[k] for k in ("sha256", "name", "version", "target")} | {"manifest": r["manifest"]}
        if r["state"] == "completed":
            per["production"] = artifact
        elif r["state"] == "aborted":
            per["rolled_back"] = artifact
        elif r["state"] in ("running", "paused") and r["wave"] >= 0:
            per["canary"] = artifact
    for per in wanted.values():  # NOTE: what production runs is neither a canary nor rolled back
        for alias in ("canary", "rolled_back"):
            if per[alias] is not None and per[alias] == per["production"]:
                per[alias] = None
    return wanted


def reconcile(fleet: Any, uri: str | None = None) -> dict[str, dict[str, str | None]]:
    """Make the registry's aliases say what `fleet` runs; returns name → alias → model version (or None)."""
    client = open_client(uri)
    done: dict[str, dict[str, str | None]] = {}
    for name, per in fleet_aliases(fleet).items():
        done[name] = {}
        for alias, artifact in per.items():
            version = None
            if artifact is not None:
                source = fleet.artifacts.path(artifact["sha256"]).resolve().as_uri()
                version = register_artifact(client, json.loads(artifact["manifest"]), source)
            set_alias(client, name, alias, version)
            done[name][alias] = version
    return done


class FleetAliasMirror:
    """`notify()` after rollouts move; a background thread reconciles (several notifies, one reconcile)."""

    def __init__(self, fleet: Any, uri: str | None = None) -> None:
        self.fleet, self.uri = fleet, uri
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="edgeml-mlflow-aliases", daemon=True)
        self._thread.start()

    def notify(self, moves: list[Any] | None = None) -> None:
        if moves is None or any(getattr(m, "lifecycle", "rollout") == "rollout" for m in moves):
            self._idle.clear()
            self._wake.set()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Until every notify so far is reconciled (tests, the demo's summary)."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                reconcile(self.fleet, self.uri)
            except Exception:  # NOTE: tracking must never stop the fleet; the next move retries
                log.exception("could not mirror the fleet's rollouts into MLflow registry aliases")
            if not self._wake.is_set():
                self._idle.set()

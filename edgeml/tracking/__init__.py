"""MLflow tracking for edgeml (the optional `edgeml[mlflow]` extra): every compile as a run, every signed
artifact as a registered model version, and the fleet's rollouts as registry aliases.

Importing this package does not import MLflow; the functions do, when called.
"""

from __future__ import annotations

from edgeml.tracking.compile_run import TrackedCompile, log_compile
from edgeml.tracking.fleet_aliases import FleetAliasMirror, reconcile
from edgeml.tracking.mlflow_client import TrackingError, open_client
from edgeml.tracking.registry_aliases import FLEET_ALIASES, aliases
from edgeml.tracking.tracking_store import resolve_uri, tracking_requested

__all__ = [
    "FLEET_ALIASES",
    "FleetAliasMirror",
    "TrackedCompile",
    "TrackingError",
    "aliases",
    "log_compile",
    "open_client",
    "reconcile",
    "resolve_uri",
    "tracking_requested",
]

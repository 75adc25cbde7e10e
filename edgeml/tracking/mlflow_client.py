"""The one place edgeml imports MLflow: a client on the resolved tracking URI, and the experiment to log to.

MLflow is the optional `edgeml[mlflow]` extra; without it a request to track fails with the install line.
"""

from __future__ import annotations

import logging
from typing import Any

from edgeml.errors import EdgemlError
from edgeml.tracking.tracking_store import artifact_root_for, resolve_uri

__all__ = ["TrackingError", "experiment_id", "open_client"]

log = logging.getLogger(__name__)
_QUIET = ("alembic", "mlflow.store.db.utils", "mlflow.tracking", "mlflow.store")


class TrackingError(EdgemlError):
    """MLflow is missing or the tracking store cannot be reached or written."""


def open_client(uri: str | None) -> Any:
    """An `mlflow.MlflowClient` on `uri` (see resolve_uri) for tracking and the model registry."""
    try:
        import mlflow
    except ImportError as exc:
        raise TrackingError(
            f"tracking to MLflow needs the mlflow package, which is not installed here ({exc})",
            "pip install 'edgeml[mlflow]', or leave out --mlflow / EDGEML_MLFLOW",
        ) from exc
    for name in _QUIET:  # NOTE: the SQLite store's first use runs ~40 alembic migrations, each logged at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    resolved = resolve_uri(uri)
    return mlflow.MlflowClient(tracking_uri=resolved, registry_uri=resolved)


def experiment_id(client: Any, name: str) -> str:
    """The experiment called `name`, created on first use (artifacts beside an SQLite store)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root_for(client.tracking_uri))
    except Exception:  # NOTE: another process created it between our look and our create
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id

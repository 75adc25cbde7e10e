"""Where compile runs and registry aliases go: `--mlflow URI`, else `MLFLOW_TRACKING_URI`, else a local
SQLite tracking store with an artifact folder under edgeml's data folder (no server needed).

Tracking is opt-in: nothing is logged unless the user asks with `--mlflow [URI]` or `EDGEML_MLFLOW`
(`1` or a URI). A team's `MLFLOW_TRACKING_URI` alone only chooses where tracking goes once asked for,
so installing the extra never starts sending every compile to a server nobody named.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["LOCAL", "artifact_root_for", "data_dir", "local_store", "resolve_uri", "tracking_requested"]

LOCAL = "local"  # `--mlflow` without a URI: the embedded store (or MLFLOW_TRACKING_URI where set)
_OFF = ("", "0", "false", "no", "off")


def data_dir() -> Path:
    """`EDGEML_DATA_DIR`, else the user's data folder (e.g. ~/.local/share/edgeml): kept, unlike the cache."""
    env = os.environ.get("EDGEML_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir("edgeml"))


def local_store() -> str:
    """The embedded store: an SQLite file under the data folder (artifacts beside it, see artifact_root_for)."""
    root = data_dir() / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


def tracking_requested(flag: str | None) -> str | None:
    """The URI the user asked to track to (`--mlflow [URI]`, else `EDGEML_MLFLOW`), or None: no tracking."""
    if flag:
        return flag
    env = os.environ.get("EDGEML_MLFLOW", "").strip()
    if env.lower() in _OFF:
        return None
    return LOCAL if env.lower() in ("1", "true", "yes", "on") else env


def resolve_uri(uri: str | None) -> str:
    """An explicit URI as given; `local` or None → `MLFLOW_TRACKING_URI`, else the embedded SQLite store."""
    if uri and uri != LOCAL:
        return uri
    return os.environ.get("MLFLOW_TRACKING_URI") or local_store()


def artifact_root_for(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside an SQLite store's file (MLflow's own default is
    `./mlruns` in whatever folder the command runs from), else the server's or file store's default."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()

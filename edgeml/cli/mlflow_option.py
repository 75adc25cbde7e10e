"""`--mlflow [URI]` on the commands that can record to MLflow, and the one call that records a compile."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from edgeml.cli.output import stderr

__all__ = ["mlflow_option", "track_compiles"]


def mlflow_option(fn):
    return click.option(
        "--mlflow",
        "mlflow",
        is_flag=False,
        flag_value="local",
        default=None,
        metavar="[URI]",
        help="Record to MLflow (pip install 'edgeml[mlflow]'): alone, the local SQLite store under edgeml's data "
        "folder (or MLFLOW_TRACKING_URI); with a URI, that tracking server. Also on with EDGEML_MLFLOW=1|URI. "
        "Off by default.",
    )(fn)


def track_compiles(results: list[Any], flag: str | None) -> dict[str, Any]:
    """Log each compile result as an MLflow run when tracking was asked for: `{"mlflow": [...]}` or `{}`."""
    from edgeml.tracking.tracking_store import tracking_requested

    uri = tracking_requested(flag)
    if uri is None or not results:
        return {}
    from edgeml.tracking import log_compile

    tracked = [log_compile(r, uri) for r in results]
    for t in tracked:
        stderr.print(
            f"[green]✓[/] MLflow run {t.run_id[:12]} in {escape(t.tracking_uri)}; registered {escape(t.model_name)} "
            f"version {t.model_version}"
        )
    return {"mlflow": [t.to_dict() for t in tracked]}

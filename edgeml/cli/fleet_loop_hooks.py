"""What `edgeml fleet serve` adds for the closed loop: `--mlflow` mirrors rollouts into registry aliases, and
`--auto-retrain HOOK` runs the retraining flow when a request opens (both off by default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from edgeml.cli.output import console

__all__ = ["auto_retrain_option", "start_loop_hooks"]


def auto_retrain_option(fn):
    fn = click.option(
        "--auto-retrain",
        "auto_retrain",
        default=None,
        metavar="MODULE:FUNCTION",
        help="Run the retraining flow (pip install 'edgeml[prefect]') with this training function whenever a "
        "retraining request opens: train → compile → evaluate against production → canary rollout. Off by "
        "default; see `edgeml fleet retrain run --help` for the steps.",
    )(fn)
    return click.option(
        "--require-approval",
        is_flag=True,
        help="With --auto-retrain: stop before the rollout until `edgeml fleet retrain approve REQUEST`.",
    )(fn)


@dataclass
class LoopHooks:
    mirror: Any = None
    auto: Any = None

    def stop(self) -> None:
        for part in (self.auto, self.mirror):
            if part is not None:
                part.stop()


def start_loop_hooks(service, mlflow: str | None, auto_retrain: str | None, db, store, key, require_approval=False):
    from edgeml.tracking.tracking_store import tracking_requested

    hooks = LoopHooks()
    uri = tracking_requested(mlflow)
    if uri is not None:
        from edgeml.tracking import FleetAliasMirror, open_client

        open_client(uri)  # NOTE: a missing extra or a bad URI fails here, before the service starts
        hooks.mirror = FleetAliasMirror(service.fleet, uri)
        service.on_moves.append(hooks.mirror.notify)
        hooks.mirror.notify()  # catch up with what happened while no mirror ran
        console.print(f"[green]✓[/] rollouts mirrored into MLflow registry aliases ({uri})")
    if auto_retrain:
        from edgeml.flows import RetrainSettings
        from edgeml.flows.auto_retrain import AutoRetrain

        settings = RetrainSettings(db, store, auto_retrain, key=key, mlflow=mlflow,
                                   require_approval=require_approval)  # fmt: skip
        hooks.auto = AutoRetrain(settings, service.fleet, leads=lambda: service.leads).start()
        console.print(f"[green]✓[/] retraining requests run the flow with {auto_retrain}")
    return hooks

"""The retraining loop as a Prefect flow (the optional `edgeml[prefect]` extra): a retraining request →
export → the user's training hook → compile → evaluate against production → publish → canary → resolved.

Importing this package does not import Prefect; `retrain_and_roll_out` and `approve` do, on first use.
"""

from __future__ import annotations

from typing import Any

from edgeml.flows.flow_ledger import FlowLedger
from edgeml.flows.retrain_settings import RetrainSettings
from edgeml.flows.training_hook import TrainingHookError, TrainingRequest, TrainingResult

__all__ = [
    "FlowLedger",
    "RetrainSettings",
    "TrainingHookError",
    "TrainingRequest",
    "TrainingResult",
    "approve",
    "retrain_and_roll_out",
    "run_retrain",
]


def run_retrain(request_id: str, settings: RetrainSettings) -> dict[str, Any]:
    """Run the flow once for `request_id` (Prefect's ephemeral API unless a server is configured)."""
    return _flow_module().retrain_and_roll_out(request_id, settings)


def approve(settings: RetrainSettings, request_id: str, who: str = "operator") -> None:
    FlowLedger(settings.ledger_path()).record(request_id, "approval", {"approved_by": who})


def __getattr__(name: str) -> Any:
    if name == "retrain_and_roll_out":
        return _flow_module().retrain_and_roll_out
    raise AttributeError(name)


def _flow_module():
    from edgeml.errors import EdgemlError

    try:
        from edgeml.flows import retrain_flow
    except ImportError as exc:
        if "prefect" not in str(exc):
            raise
        raise EdgemlError(
            f"the retraining flow needs Prefect, which is not installed here ({exc})", "pip install 'edgeml[prefect]'"
        ) from exc
    return retrain_flow

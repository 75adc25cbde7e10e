"""What `Agent.predict` returns (the model's outputs, plus the id to send feedback for) and what it raises."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeml.errors import EdgemlError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["PredictError", "Prediction"]


class Prediction(dict[str, "np.ndarray"]):  # NOTE: a string, so the agent starts without numpy
    """Output name → array, as the runtime returned them; `request_id` names this call for `Agent.feedback`,
    `latency_ms` is the model's own time (what the telemetry sketch counted)."""

    __slots__ = ("latency_ms", "request_id")
    request_id: Any
    latency_ms: float


class PredictError(EdgemlError):
    """No model is committed yet (`code` "no_model"), or the model failed on the inputs ("model_error")."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code

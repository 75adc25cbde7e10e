"""The user's training function (`module:function`, like `--finetune-hook`): what it gets, what it returns.

    def retrain(request: TrainingRequest) -> TrainingResult | str

It gets the exported evidence (request.json, drift.npz: per-device histograms over the reference bins, and
samples.npz where devices sent raw samples), the manifest of the release being replaced and a folder to
write into; it returns the trained model (any source `edgeml compile` takes) and, optionally, the data the
flow compiles and evaluates with. Without `eval`, the replaced release's evaluation set is used if it is
still where its manifest says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeml.errors import EdgemlError
from edgeml.importing import import_callable

__all__ = ["TrainingHookError", "TrainingRequest", "TrainingResult", "call_training_hook"]


class TrainingHookError(EdgemlError):
    """The training hook cannot be imported, failed, or returned something the flow cannot compile."""


@dataclass(frozen=True)
class TrainingRequest:
    request: dict[str, Any]  # the retraining request (id, artifact_sha, input, feature, devices, max_psi, …)
    evidence_dir: Path  # request.json, drift.npz (and samples.npz where the fleet has raw samples)
    replaced_manifest: dict[str, Any]  # the release the devices ran when the drift was seen
    out_dir: Path  # where to write the trained model
    seed: int = 0


@dataclass(frozen=True)
class TrainingResult:
    model: str  # a model source for `edgeml compile`: .onnx, .pt2, TorchScript or module:function
    calib: str | None = None  # calibration data (default: the replaced release's, if still there)
    eval: str | None = None  # the original evaluation set, with labels
    drifted: str | None = None  # labelled samples that look like the drifted traffic
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "calib": self.calib, "eval": self.eval, "drifted": self.drifted,
                "notes": list(self.notes)}  # fmt: skip


def call_training_hook(spec: str, request: TrainingRequest) -> TrainingResult:
    hook = import_callable(spec, TrainingHookError)
    request.out_dir.mkdir(parents=True, exist_ok=True)
    result = hook(request)
    if isinstance(result, (str, Path)):
        result = TrainingResult(str(result))
    if not isinstance(result, TrainingResult):
        raise TrainingHookError(
            f"training hook {spec} returned {type(result).__name__}",
            "return a TrainingResult (edgeml.flows.TrainingResult) or the path of the trained model",
        )
    return result

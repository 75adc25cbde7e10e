"""Calibration inputs + float outputs → the reference profile stored in the manifest for drift.

Inputs: per feature (2-D) or channel (≥3-D) of float tensors, quantile bin edges and counts; integer
inputs, tensors with more than MAX_FEATURES features and inputs whose batch is not axis 0 are profiled as a
whole; constants (a sample rate) are not profiled. Outputs: a classifier-
shaped output ([N, classes ≤ 1000]) gets a class histogram and a top-1 confidence histogram; anything
else gets a whole-tensor value histogram. The device agent counts live traffic over the same bins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.drift import bin_counts, feature_axis, feature_views, quantile_edges, top1_confidence
from edgeml.output_kinds import is_classifier_output

__all__ = ["BINS", "build_reference_profile", "feature_axis", "top1_confidence"]

BINS = 10
MAX_CLASSES = 1000
_CONFIDENCE_EDGES = [round(0.1 * i, 1) for i in range(1, 10)]


def build_reference_profile(calib: Dataset, outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "bins": BINS,
        "samples": len(calib),
        "inputs": {
            # NOTE: an input whose samples are not on axis 0 (a state) is profiled whole: the agent sees it in
            # the model's layout, where axis 1 is not a feature axis
            name: _profile_tensor(values, "auto" if calib.batch_axes.get(name, 0) == 0 else None)
            for name, values in calib.inputs.items()
        },
        "outputs": {name: _profile_output(values) for name, values in outputs.items()},
    }


def _profile_tensor(values: np.ndarray, axis: int | str | None = "auto") -> dict[str, Any]:
    axis = feature_axis(values) if axis == "auto" else axis
    features = []
    for view in feature_views(values, axis):
        edges = quantile_edges(view, BINS)
        features.append({"edges": edges, "counts": bin_counts(view, edges).tolist()})
    return {"kind": "values", "axis": axis, "features": features}


def _profile_output(values: np.ndarray) -> dict[str, Any]:
    if is_classifier_output(values):
        classes = np.bincount(values.argmax(axis=1), minlength=values.shape[1])
        confidence = bin_counts(top1_confidence(values), _CONFIDENCE_EDGES)
        return {
            "kind": "classes",
            "class_counts": classes.tolist(),
            "confidence": {"edges": _CONFIDENCE_EDGES, "counts": confidence.tolist()},
        }
    return _profile_tensor(values, axis=None)

"""What a model output holds, read from its float values: class scores, probabilities, or neither. Light (NumPy
only): the compiler's evaluation, the drift reference profile and the device agent read outputs the same way."""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_CLASSES", "is_classifier_output", "probability_kind"]

MAX_CLASSES = 1000  # per sample: more values than this are a map or an embedding, not scores to decide on
_UNIT_TOLERANCE = 1e-4  # float rounding around [0, 1] and around a row sum of 1


def is_classifier_output(values: np.ndarray) -> bool:
    """[N, classes ≤ 1000] scores; an L2-normalised signed embedding (row norms ≈ 1) is not one."""
    if not (values.ndim == 2 and values.dtype.kind == "f" and 2 <= values.shape[1] <= MAX_CLASSES):
        return False
    unit_rows = np.allclose(np.linalg.norm(values, axis=1), 1.0, atol=1e-3)
    return not (unit_rows and values.min() < 0)


def probability_kind(values: np.ndarray) -> str | None:
    """'distribution' (softmax: along axis 1 every row sums to 1, ≥ 2 classes), 'probability' (sigmoid: every
    value within [0, 1]) or None, for [N, …] float outputs of at most `MAX_CLASSES` values per sample.

    A larger [0, 1] output (an image, a mask) is a map, not a decision: its fidelity is its SNR and channels."""
    if values.dtype.kind != "f" or values.ndim < 1 or values.size == 0:
        return None
    per_sample = values.size // max(len(values), 1)
    if per_sample > MAX_CLASSES or not np.isfinite(values).all():
        return None
    if values.min() < -_UNIT_TOLERANCE or values.max() > 1 + _UNIT_TOLERANCE:
        return None
    if values.ndim >= 2 and values.shape[1] >= 2 and np.allclose(values.sum(axis=1), 1.0, atol=1e-3):
        return "distribution"
    return "probability"

"""What a model output holds, read from its values: class scores or not. Light (NumPy only): the compiler's
evaluation, the drift reference profile and the device agent read outputs the same way."""

from __future__ import annotations

import numpy as np

__all__ = ["is_classifier_output"]


def is_classifier_output(values: np.ndarray) -> bool:
    """[N, classes ≤ 1000] scores; an L2-normalised signed embedding (row norms ≈ 1) is not one."""
    if not (values.ndim == 2 and values.dtype.kind == "f" and 2 <= values.shape[1] <= 1000):
        return False
    unit_rows = np.allclose(np.linalg.norm(values, axis=1), 1.0, atol=1e-3)
    return not (unit_rows and values.min() < 0)

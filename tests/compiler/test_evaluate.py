"""Per-channel fidelity: a destroyed live channel is caught, a dead channel flushed to zero is not a loss."""

from __future__ import annotations

import numpy as np

import edgeml.calibration  # noqa: F401  (first: edgeml.calibration and edgeml.compiler.evaluate import each other)
from edgeml.compiler.evaluate import fidelity


def test_dead_channel_flushed_to_zero_is_not_a_destroyed_channel():
    ref = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    ref[:, 3] = 1e-33  # like MiniLM's embedding channel 127, which FP16 weights turn into exact zeros
    out = ref.copy()
    out[:, 3] = 0.0
    assert fidelity({"y": ref}, {"y": out})["y"]["worst_channel_cosine"] == 1.0


def test_destroyed_live_channel_is_still_caught():
    ref = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    out = ref.copy()
    out[:, 5] = 0.0
    result = fidelity({"y": ref}, {"y": out})["y"]
    assert result["worst_channel"] == 5 and result["worst_channel_cosine"] == 0.0

"""Float outputs vs candidate outputs → fidelity per output and per channel; outputs vs labels → accuracy.

A whole-tensor figure can hide a destroyed channel group (a detection head lost every class score while
its tensor cosine stayed 0.9995), so every output also reports its worst channel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.output_kinds import is_classifier_output
from edgeml.runtimes import Session

__all__ = ["EVAL_BATCH", "fidelity", "run_dataset", "top1_accuracy"]

EVAL_BATCH = 64
_SQNR_CAP_DB = 200.0
_NEGLIGIBLE_CHANNEL = 1e-6  # of the strongest channel's norm


def run_dataset(session: Session, dataset: Dataset) -> dict[str, np.ndarray]:
    """All outputs over the dataset, batched when every input's batch dimension is dynamic."""
    dynamic = all(spec.batch_is_dynamic for spec in session.signature.inputs)
    parts = [session.run(feed) for feed in dataset.batches(EVAL_BATCH if dynamic else 1)]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def top1_accuracy(outputs: dict[str, np.ndarray], labels: np.ndarray) -> float | None:
    """Top-1 accuracy in percent on the first classifier-shaped output; None if there is none."""
    name = next((n for n, v in outputs.items() if is_classifier_output(v)), None)
    if name is None:
        return None
    return float((outputs[name].argmax(axis=1) == labels).mean() * 100.0)


def fidelity(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {name: _output_fidelity(reference[name], candidate[name]) for name in reference}


def _output_fidelity(ref: np.ndarray, out: np.ndarray) -> dict[str, Any]:
    r = ref.reshape(len(ref), -1).astype(np.float64)
    o = out.reshape(len(out), -1).astype(np.float64)
    noise = float(((r - o) ** 2).sum())
    signal = float((r**2).sum())
    result: dict[str, Any] = {
        "cosine": round(float(np.mean(_cosine_rows(r, o))), 6),
        "sqnr_db": round(
            _SQNR_CAP_DB if noise == 0 else min(_SQNR_CAP_DB, 10 * np.log10(max(signal, 1e-30) / noise)), 3
        ),
        "max_abs_err": float(np.abs(r - o).max()),
    }
    if ref.ndim >= 2:
        per_channel = _channel_cosines(_channels(ref), _channels(out))
        worst = int(np.argmin(per_channel))
        result |= {"worst_channel_cosine": round(float(per_channel[worst]), 6), "worst_channel": worst}
    if is_classifier_output(ref):
        result["top1_agreement"] = round(float((ref.argmax(1) == out.argmax(1)).mean()), 6)
    return result


def _channels(a: np.ndarray) -> np.ndarray:
    """[N, C, ...] → [C, N·…]: one row per channel (axis 1)."""
    return np.moveaxis(a, 1, 0).reshape(a.shape[1], -1).astype(np.float64)


def _channel_cosines(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Cosine per channel; a channel that is negligible (≤ −120 dB of the strongest) in both counts as equal.

    MiniLM's embedding has a dead channel (|x| ~ 1e-33): FP16 weights flush it to exactly 0, which a plain
    cosine scores 0.0, as if a live channel had been destroyed.
    """
    ref_norm, out_norm = np.linalg.norm(ref, axis=1), np.linalg.norm(out, axis=1)
    floor = _NEGLIGIBLE_CHANNEL * float(ref_norm.max(initial=0.0))
    return np.where((ref_norm <= floor) & (out_norm <= floor), 1.0, _cosine_rows(ref, out))


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = (a * b).sum(axis=1)
    both_zero = (na == 0) & (nb == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / (na * nb)
    return np.where(both_zero, 1.0, np.nan_to_num(cos, nan=0.0))

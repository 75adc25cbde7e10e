"""Float outputs vs candidate outputs → fidelity per output and per channel; outputs vs labels → accuracy.

Every figure is computed over all samples at once, never as a mean of per-sample figures: on a one-number
output ([N, 1], a speech probability) each sample's own cosine is ±1, so a mean of them read 1.0 while the
probability moved by 0.41. Per output:

    cosine                the whole output, all samples together (reads 1.0 only where nothing moved)
    sqnr_db               signal-to-noise ratio vs float (dB, capped at 200)
    max_abs_err           largest absolute difference
    max_rel_err           largest absolute difference in a channel over that channel's float peak, worst channel
    worst_channel(_cosine) each channel (axis 1) over all samples: a destroyed channel group shows here (a
                          detection head lost every class score while its tensor cosine stayed 0.9995)
    kind                  what the float values say the output is (edgeml/output_kinds.py): 'probability'
                          (sigmoid), 'distribution' (softmax rows), 'scores' (classifier logits) or 'values'
    decision_agreement    probabilities and distributions: the share of decisions (p > 0.5, or top-1 of each
                          row) the candidate takes as float does
    top1_agreement        classifier-shaped outputs: the share of samples whose top-1 class agrees
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.closed_loop import run_closed_loop
from edgeml.output_kinds import is_classifier_output, probability_kind
from edgeml.runtimes import Session

__all__ = [
    "DECISION_THRESHOLD",
    "EVAL_BATCH",
    "cosine_text",
    "eval_batch",
    "fidelity",
    "run_dataset",
    "top1_accuracy",
]

EVAL_BATCH = 64
DECISION_THRESHOLD = 0.5  # a probability output's decision: p > 0.5
_SQNR_CAP_DB = 200.0
_NEGLIGIBLE_CHANNEL = 1e-6  # of the strongest channel's norm
_MAX_REL_ERR = 1e6  # a channel float leaves at 0 that the candidate moves: reported, capped


def run_dataset(session: Session, dataset: Dataset, batch: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """All outputs over the dataset, batched (up to `batch`) when every input's batch dimension is dynamic; a
    stateful model's closed-loop, each model carrying its own state through the ordered sequences (`closed_loop`)."""
    if dataset.recurrent:
        return run_closed_loop(session, dataset)
    dynamic = all(spec.batch_is_dynamic for spec in session.signature.inputs)
    parts = [session.run(feed) for feed in dataset.batches(batch if dynamic else 1)]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def eval_batch(float_onnx: bytes, dataset: Dataset) -> int:
    """The batch a runtime may run `dataset` in within the compile's memory budget: the float model's
    activations for one sample (shape inference; an upper bound of what a runtime keeps live) per sample."""
    import onnx

    from edgeml.compiler.layer_numerics import activation_bytes
    from edgeml.compiler.memory_budget import current_budget

    if not len(dataset):
        return EVAL_BATCH
    per_sample = activation_bytes(onnx.load_model_from_string(float_onnx), dataset.feed(slice(0, 1)))
    return current_budget().samples_at_once(per_sample, "evaluation", EVAL_BATCH)


def top1_accuracy(outputs: dict[str, np.ndarray], labels: np.ndarray) -> float | None:
    """Top-1 accuracy in percent on the first classifier-shaped output; None if there is none."""
    name = next((n for n, v in outputs.items() if is_classifier_output(v)), None)
    if name is None:
        return None
    return float((outputs[name].argmax(axis=1) == labels).mean() * 100.0)


def fidelity(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {name: _output_fidelity(reference[name], candidate[name]) for name in reference}


def cosine_text(value: float | None) -> str:
    """6 decimals, or as many more as it takes not to print 1.000000 for a cosine below 1."""
    if value is None:
        return "—"
    text = f"{value:.6f}"
    return f"{value:.9f}" if value < 1 and text == "1.000000" else text


def _output_fidelity(ref: np.ndarray, out: np.ndarray) -> dict[str, Any]:
    ref_c, out_c = _channels(ref), _channels(out)
    noise = float(((ref_c - out_c) ** 2).sum())
    signal = float((ref_c**2).sum())
    per_channel, moved = _channel_cosines(ref_c, out_c)
    worst = int(np.argmin(np.where(moved, np.minimum(per_channel, 1 - 1e-9), 1.0)))
    whole = _cosine_rows(ref_c.reshape(1, -1), out_c.reshape(1, -1))[0]
    result: dict[str, Any] = {
        "cosine": _shown(whole, noise),
        "sqnr_db": round(
            _SQNR_CAP_DB if noise == 0 else min(_SQNR_CAP_DB, float(10 * np.log10(max(signal, 1e-30) / noise))), 3
        ),
        "max_abs_err": float(np.abs(ref_c - out_c).max(initial=0.0)),
        "max_rel_err": _max_rel_err(ref_c, out_c),
        "worst_channel_cosine": _shown(per_channel[worst], float(moved[worst])),
        "worst_channel": worst,
        "channels": len(ref_c),
    }
    return result | _decisions(ref, out)


def _decisions(ref: np.ndarray, out: np.ndarray) -> dict[str, Any]:
    """The output's kind, and where it decides something, how often the candidate decides as float does."""
    kind = probability_kind(ref)
    if kind == "distribution":
        found = {"kind": kind, "decision": "top-1", "decision_agreement": _share(ref.argmax(1) == out.argmax(1))}
    elif kind == "probability":
        agree = (ref > DECISION_THRESHOLD) == (out > DECISION_THRESHOLD)
        found = {"kind": kind, "decision": f"p > {DECISION_THRESHOLD:g}", "decision_agreement": _share(agree)}
    else:
        found = {"kind": "scores" if is_classifier_output(ref) else "values"}
    if is_classifier_output(ref):
        found["top1_agreement"] = _share(ref.argmax(1) == out.argmax(1))
    return found


def _share(agree: np.ndarray) -> float:
    """A share that reads 1.0 only when every decision agrees (one flip in a million still shows)."""
    share = float(agree.mean())
    return 1.0 if share == 1.0 else min(round(share, 6), 0.999999)


def _shown(cosine: float, noise: float) -> float:
    """9 decimals, and 1.0 only where the values did not move at all: rounding never hides a change (float
    rounding noise between two FP32 runtimes still reads 0.99999999x, above any floor a user sets)."""
    if noise == 0:
        return 1.0
    return min(round(float(cosine), 9), 1 - 1e-9)


def _max_rel_err(ref: np.ndarray, out: np.ndarray) -> float:
    """max |ref − out| per channel over that channel's peak |ref|, worst channel: box coordinates up to 320 and
    scores below 1 in one tensor are each judged on their own scale. A channel negligible in float counts
    against the output's peak instead."""
    peak = np.abs(ref).max(axis=1, initial=0.0)
    floor = max(_NEGLIGIBLE_CHANNEL * float(peak.max(initial=0.0)), 1e-30)
    err = np.abs(ref - out).max(axis=1, initial=0.0) / np.maximum(peak, floor)
    return round(float(min(err.max(initial=0.0), _MAX_REL_ERR)), 6)


def _channels(a: np.ndarray) -> np.ndarray:
    """[N, C, ...] → [C, N·…]: one row per channel (axis 1); [N] is one channel."""
    a = a.reshape(len(a), 1) if a.ndim < 2 else a
    return np.moveaxis(a, 1, 0).reshape(a.shape[1], -1).astype(np.float64)


def _channel_cosines(ref: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine per channel, and which channels moved; a channel that is negligible (≤ −120 dB of the strongest)
    in both counts as equal (cosine 1, not moved).

    MiniLM's embedding has a dead channel (|x| ~ 1e-33): FP16 weights flush it to exactly 0, which a plain
    cosine scores 0.0, as if a live channel had been destroyed.
    """
    ref_norm, out_norm = np.linalg.norm(ref, axis=1), np.linalg.norm(out, axis=1)
    floor = _NEGLIGIBLE_CHANNEL * float(ref_norm.max(initial=0.0))
    negligible = (ref_norm <= floor) & (out_norm <= floor)
    moved = (ref != out).any(axis=1) & ~negligible
    return np.where(negligible, 1.0, _cosine_rows(ref, out)), moved


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = (a * b).sum(axis=1)
    both_zero = (na == 0) & (nb == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / (na * nb)
    return np.where(both_zero, 1.0, np.nan_to_num(cos, nan=0.0))

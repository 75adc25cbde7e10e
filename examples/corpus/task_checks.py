"""Task checks: does a compiled model make the same decisions as the float model, on the model's own task?

``run_check(folder, candidate)`` runs the corpus model's task check (``meta.json``'s ``task``) with the float
reference (``reference.onnx`` in ONNX Runtime, or the TorchScript file for ``vad_jit``) and ``candidate``
(a callable ``feeds -> {output name: array}``, batch 1) on ``eval.npz``, and returns figures plus one
headline, ``agree`` (a share in [0, 1]; ≥ 0.99 is the corpus's budget):

  vad         closed-loop (each model carries its own state and 64-sample context through every ordered eval
              sequence, as silero's wrapper does): speech decisions at 0.5 that agree; max probability error
  vad_jit     the TorchScript model in torch, state reset per sequence, vs the candidate fed window by window
  state_prob  closed-loop like vad, for the synthetic GRU step (state batch on axis 1)
  face        MTCNN: face decisions (0.6 P-Net, 0.7 R-/O-Net, facenet-pytorch's thresholds) that agree; the
              share of float faces whose box offsets moved ≤ 0.02 (of the box size)
  top1        argmax agreement
  ctc         PP-OCR recogniser: per-time-step argmax agreement and whole-line (CTC-collapsed) agreement
  textmap     PP-OCR DB detector: text-pixel decisions at 0.3 that agree, IoU of text pixels
  embedding   MiniLM: embedding cosine (mean, min); agree = share of sentences at cosine ≥ 0.99
  detect      YOLO-like head: worst channel cosine (all samples), box error in pixels, score decisions at
              the float's 90th percentile per class; agree = the share of score decisions that agree
  prob        one sigmoid: decisions at 0.5 and at the float median that agree; max error
  regression  SNR (dB) of the output; agree = share of samples whose relative error ≤ 5 %
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from corpus import Meta, load_meta, load_samples  # noqa: E402

__all__ = ["AGREE_BUDGET", "Runner", "ort_runner", "run_check"]

Runner = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
AGREE_BUDGET = 0.99


def ort_runner(path: Path) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return lambda feeds: dict(zip(names, session.run(None, dict(feeds)), strict=True))


def _samples(meta: Meta, folder: Path) -> dict[str, np.ndarray]:
    return load_samples(folder, "eval")


def _feed(meta: Meta, samples: Mapping[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    """Sample i as batch-1 feeds: the batch axis put back where the model has it (none for a scalar)."""
    feeds = {}
    for name, a in samples.items():
        axis = meta.inputs[name].get("batch_axis", 0)
        feeds[name] = np.asarray(a[i]) if axis is None else np.expand_dims(a[i], axis)
    return feeds


def _each(meta: Meta, samples: Mapping[str, np.ndarray], run: Runner) -> dict[str, np.ndarray]:
    n = len(next(iter(samples.values())))
    outs = [run(_feed(meta, samples, i)) for i in range(n)]
    return {k: np.concatenate([np.asarray(o[k]) for o in outs]) for k in outs[0]}


def _pick(outputs: Mapping[str, np.ndarray], name: str, index: int) -> np.ndarray:
    """An output by name, else by position (runtimes may rename outputs)."""
    if name in outputs:
        return np.asarray(outputs[name])
    return np.asarray(list(outputs.values())[index])


def run_check(folder: Path, candidate: Runner) -> dict[str, Any]:
    meta = load_meta(folder)
    return CHECKS[meta.task](meta, folder, candidate)


# --- closed-loop (stateful) checks ----------------------------------------------------------------------------


def _closed_loop(meta: Meta, run: Runner, samples: Mapping[str, np.ndarray], context: int) -> np.ndarray:
    """Each sequence run from a zero state, the model's own stateN (and audio context) fed back; probabilities."""
    state_name = next(n for n, s in meta.inputs.items() if s.get("recurrent"))
    state_out = meta.inputs[state_name]["recurrent"]
    data_name = next(n for n in samples if n not in (state_name,) and meta.inputs[n].get("batch_axis") == 0)
    probs = []
    for start, stop in meta.eval_sequences:
        axis = meta.inputs[state_name]["batch_axis"]
        state = np.zeros_like(np.expand_dims(samples[state_name][start], axis))
        tail = np.zeros((1, context), np.float32)
        for i in range(start, stop):
            feeds = _feed(meta, samples, i)
            if context:
                feeds[data_name] = np.concatenate([tail, feeds[data_name][:, context:]], axis=1)
                tail = feeds[data_name][:, -context:]
            feeds[state_name] = state
            out = run(feeds)
            probs.append(float(_pick(out, meta.outputs[0], 0).reshape(-1)[0]))
            state = _pick(out, state_out, 1).astype(np.float32)
    return np.asarray(probs)


def _decisions(ref: np.ndarray, got: np.ndarray, threshold: float) -> float:
    return float(np.mean((ref >= threshold) == (got >= threshold)))


def check_vad(meta: Meta, folder: Path, candidate: Runner) -> dict[str, Any]:
    samples = _samples(meta, folder)
    context = 64 if meta.family == "silero" else 0
    ref = _closed_loop(meta, ort_runner(folder / "reference.onnx"), samples, context)
    got = _closed_loop(meta, candidate, samples, context)
    agree = _decisions(ref, got, 0.5)
    if meta.task == "state_prob":  # random weights: decisions at the float median see both classes
        agree = min(agree, _decisions(ref, got, float(np.median(ref))))
    return {
        "agree": agree,
        "speech_share_float": float(np.mean(ref >= 0.5)),
        "max_prob_err": float(np.abs(ref - got).max()),
        "closed_loop_steps": len(ref),
    }


def check_vad_jit(meta: Meta, folder: Path, candidate: Runner) -> dict[str, Any]:
    import torch

    model = torch.jit.load(str(folder / "model.jit"), map_location="cpu").eval()
    samples = _samples(meta, folder)
    ref, got = [], []
    for start, stop in meta.eval_sequences:
        model.reset_states()
        for i in range(start, stop):
            with torch.no_grad():
                ref.append(float(model(torch.from_numpy(samples["x"][i : i + 1]), 16000).reshape(-1)[0]))
            got.append(float(_pick(candidate(_feed(meta, samples, i)), "output", 0).reshape(-1)[0]))
    ref_a, got_a = np.asarray(ref), np.asarray(got)
    return {"agree": _decisions(ref_a, got_a, 0.5), "max_prob_err": float(np.abs(ref_a - got_a).max())}


# --- per-sample checks ------------------------------------------------------------------------------------------


def _both(meta: Meta, folder: Path, candidate: Runner) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    samples = _samples(meta, folder)
    ref = _each(meta, samples, ort_runner(folder / "reference.onnx"))
    got = _each(meta, samples, candidate)
    return ref, got


def check_face(meta: Meta, folder: Path, candidate: Runner) -> dict[str, Any]:
    ref, got = _both(meta, folder, candidate)
    idx = len(meta.outputs) - 1
    p_ref, p_got = _pick(ref, "prob", idx)[:, 1], _pick(got, "prob", idx)[:, 1]
    threshold = 0.6 if meta.name.endswith("pnet") else 0.7
    face = p_ref >= threshold
    b_ref, b_got = _pick(ref, "boxes", 0), _pick(got, "boxes", 0)
    box_err = np.abs(b_ref - b_got).max(axis=1)  # [N, ...] max over the 4 offsets
    box_ok = float(np.mean(box_err[face] <= 0.02)) if face.any() else 1.0
    return {
        "agree": _decisions(p_ref, p_got, threshold),
        "box_agree": box_ok,
        "face_share_float": float(face.mean()),
        "max_prob_err": float(np.abs(p_ref - p_got).max()),
    }


def check_top1(meta: Meta, folder: Path, candidate: Runner) -> dict[str, Any]:
    ref, got = _both(meta, folder, candidate)
    r, g = _pick(ref, meta.outputs[0], 0), _pick(got, meta.outputs[0], 0)
    return {"agree": float(np.mean(r.argmax(-1) == g.argmax(-1))), "max_abs_err": float(np.abs(r - g).max())}


def _ctc_collapse(ids: np.ndarray) -> tuple[int, ...]:
    keep = np.concatenate([[True], ids[1:] != ids[:-1]]) & (ids != 0)
    return tuple(int(i) for i in ids[keep])


def check_ctc(meta: Meta, folder: Path, candidate: Runner) -> dict[str, Any]:
    ref, got = _both(meta, folder, candidate)
    r, g = _pick(ref, meta.outputs[0], 0).argmax(-1), _pick(got, meta.outputs[0], 0).argmax(-1)
    lines = [_ctc_collapse(a) == _ctc_collapse(b) for a, b in zip(r, g, strict=True)]
    return {"agree": float(np.mean(lines)), "step_agree": float(np.mean(r == g))}


def check_textmap(meta: Meta, folder: Path, candidate: Runner) -> dict[str, Any]:
    ref, got = _both(meta, folder, candidate)
    r, g = _pick(ref, meta.outputs[0], 0) > 0.3, _pick(got, meta.outputs[0], 0) > 0.3
    union = np.logical_or(r, g).sum()
    return {"agree": float(np.mean(r == g)), "text_iou": float(np.logical_and(r, g).sum() / union) if union else 1.0}


def check_embedding(meta: Meta, folder: Path, candidate: Runner) -> dict[str, Any]:
    ref, got = _both(meta, folder, candidate)
    r, g = _pick(ref, meta.outputs[0], 0), _pick(got, meta.outputs[0], 0)
    cos = (r * g).sum(1) / (np.linalg.norm(r, axis=1) * np.linalg.norm(g, axis=1) + 1e-12)
    return {"agree": float(np.mean(cos >= 0.99)), "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}


def _channel_cosine(r: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Cosine per channel (axis 1) over all samples and positions."""
    rr = np.moveaxis(r, 1, 0).reshape(r.shape[1], -1)
    gg = np.moveaxis(g, 1, 0).reshape(g.shape[1], -1)
    return (rr * gg).sum(1) / (np.linalg.norm(rr, axis=1) * np.linalg.norm(gg, axis=1) + 1e-12)


def check_detect(meta: Meta, folder: Path, candidate: Runner) -> dict[str, Any]:
    ref, got = _both(meta, folder, candidate)
    r, g = _pick(ref, meta.outputs[0], 0), _pick(got, meta.outputs[0], 0)
    cos = _channel_cosine(r, g)
    scores_r, scores_g = r[:, 4:], g[:, 4:]
    thr = np.quantile(scores_r, 0.9, axis=(0, 2), keepdims=True)
    return {
        "agree": float(np.mean((scores_r >= thr) == (scores_g >= thr))),
        "worst_channel_cosine": float(cos.min()),
        "worst_channel": int(cos.argmin()),
        "box_err_px_max": float(np.abs(r[:, :4] - g[:, :4]).max()),
    }


def check_prob(meta: Meta, folder: Path, candidate: Runner) -> dict[str, Any]:
    ref, got = _both(meta, folder, candidate)
    r, g = _pick(ref, meta.outputs[0], 0).reshape(-1), _pick(got, meta.outputs[0], 0).reshape(-1)
    median = float(np.median(r))
    return {
        "agree": min(_decisions(r, g, 0.5), _decisions(r, g, median)),
        "agree_at_0.5": _decisions(r, g, 0.5),
        "agree_at_float_median": _decisions(r, g, median),
        "max_prob_err": float(np.abs(r - g).max()),
    }


def check_regression(meta: Meta, folder: Path, candidate: Runner) -> dict[str, Any]:
    ref, got = _both(meta, folder, candidate)
    r, g = _pick(ref, meta.outputs[0], 0), _pick(got, meta.outputs[0], 0)
    err = np.linalg.norm(r - g, axis=1) / (np.linalg.norm(r, axis=1) + 1e-12)
    snr = 10 * np.log10((r**2).sum() / max(float(((r - g) ** 2).sum()), 1e-30))
    return {"agree": float(np.mean(err <= 0.05)), "snr_db": float(min(snr, 200.0))}


CHECKS: dict[str, Callable[[Meta, Path, Runner], dict[str, Any]]] = {
    "vad": check_vad,
    "vad_jit": check_vad_jit,
    "state_prob": check_vad,
    "face": check_face,
    "top1": check_top1,
    "ctc": check_ctc,
    "textmap": check_textmap,
    "embedding": check_embedding,
    "detect": check_detect,
    "prob": check_prob,
    "regression": check_regression,
}

"""The digits example's training hook for the retraining flow (`edgeml fleet retrain run REQUEST --hook
examples.digits.retrain_hook:retrain`, from the repository root).

Fine-tunes the shipped DigitsCNN on its training split plus a copy of it moved to look like the drifted
traffic (edgeml.flows.drift_resample: the devices' histograms over the reference bins), exports ONNX, and
returns the data the flow needs: calibration data that looks like today's traffic (the new release's
reference profile), the original evaluation set, and a labelled drifted copy of it to judge the new model.
About 45 s on 2 loaded cores (15 epochs over 3,423 samples).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeml.flows import TrainingRequest, TrainingResult
from edgeml.flows.drift_resample import drifted_histogram, resample_like

HERE = Path(__file__).resolve().parent
EPOCHS = 15
LR = 2e-3


def retrain(request: TrainingRequest) -> TrainingResult:
    import torch

    from examples.digits import train as base
    from examples.digits.digits_cnn import WEIGHTS, DigitsCNN

    drift = drifted_histogram(request.evidence_dir)
    feature = int(request.request["feature"])

    def drifted(x: np.ndarray, seed: int) -> np.ndarray:
        return resample_like(x, drift["edges"], drift["counts"], feature, low=0.0, high=1.0, seed=seed)

    with np.load(HERE / "train.npz") as z:
        x, y = z["input"], z["labels"]
    with np.load(HERE / "eval.npz") as z:
        x_eval, y_eval = z["input"], z["labels"]
    with np.load(HERE / "calib.npz") as z:
        x_calib = z["input"]
    base.quiet_exporters()
    base.seed_everything(request.seed)
    model = DigitsCNN()
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    x_train = np.concatenate([x, drifted(x, request.seed + 1), drifted(x, request.seed + 2)])
    y_train = np.concatenate([y, y, y])
    model = _fine_tune(model, x_train, y_train, request.seed)
    out = request.out_dir
    base.export_onnx(model, torch.from_numpy(x_eval[:2]), out / "model.onnx")
    np.savez(out / "calib.npz", input=drifted(x_calib, request.seed + 3))
    np.savez(out / "drifted_eval.npz", input=drifted(x_eval, request.seed + 4), labels=y_eval)
    return TrainingResult(
        str(out / "model.onnx"), calib=str(out / "calib.npz"), eval=str(HERE / "eval.npz"),
        drifted=str(out / "drifted_eval.npz"),
        notes=[f"fine-tuned {EPOCHS} epochs on {len(x_train)} samples (a third as sent, two thirds drifted)"],
    )  # fmt: skip


def _fine_tune(model, x: np.ndarray, y: np.ndarray, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    epochs = int(os.environ.get("EDGEML_DIGITS_RETRAIN_EPOCHS", EPOCHS))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 32):
            b = perm[i : i + 32]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xt[b]), yt[b]).backward()
            opt.step()
        sched.step()
    return model.eval()

"""A stateful model's session + ordered sequences → its outputs with each model carrying its own state.

Fed the float model's states at every step (open loop), a candidate's per-step error never compounds, so a
quantised recurrence that drifts further at every step reads as harmless. Here each model — float and every
candidate alike — starts each sequence from its initial state (zeros, or the stored one) and is fed its own
previous output (`Dataset.recurrent`: input ← output) at every step; fidelity and decision agreement are then
computed on the per-step outputs, float's closed-loop run against the candidate's.

Calibration gets realistic states the same way: `with_float_states` replaces each fed-back input's samples with
the states the float model fed itself over the sequences, not zeros (or whatever the data held).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.errors import CalibrationError
from edgeml.runtimes import Session

__all__ = ["add_open_loop_figures", "run_closed_loop", "with_float_states", "with_float_states_of"]


def run_closed_loop(session: Session, dataset: Dataset) -> dict[str, np.ndarray]:
    """Every output of every step, one step per run, joined along axis 0 as `run_dataset` joins them."""
    parts = [out for out, _ in _steps(session, dataset)]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def with_float_states(session: Session, dataset: Dataset, keep_recurrent: bool = False) -> Dataset:
    """`dataset` with each fed-back input's samples replaced by the states `session` (the float model) fed
    itself closed-loop; open-loop (no input fed back) unless `keep_recurrent`."""
    if not dataset.recurrent:
        return dataset
    fed: dict[str, list[np.ndarray]] = {name: [] for name in dataset.recurrent}
    for _, feed in _steps(session, dataset):
        for name in fed:
            fed[name].append(_sample_of(feed[name], dataset.batch_axes.get(name, 0)))
    inputs = dataset.inputs | {name: np.stack(states) for name, states in fed.items()}
    steps, count = len(dataset), len(dataset.sequences())
    names, seqs = ", ".join(fed), f"{count} sequence{'s' if count != 1 else ''} ({steps} steps)"
    note = (
        f"{dataset.source}: evaluated closed-loop over {seqs}, each model carrying its own {names}"
        if keep_recurrent
        else f"{dataset.source}: calibrated with the float model's own closed-loop {names} over {seqs}"
    )
    replaced = dataclasses.replace(dataset, inputs=inputs, notes=(*dataset.notes, note))
    return replaced if keep_recurrent else replaced.open_loop()


def with_float_states_of(model_onnx: bytes, dataset: Dataset, keep_recurrent: bool = False) -> Dataset:
    """`with_float_states` on an ONNX model's bytes, run in ONNX Runtime (the float reference)."""
    if not dataset.recurrent:
        return dataset
    import tempfile

    from edgeml.runtimes import open_session

    with tempfile.TemporaryDirectory(prefix="edgeml-states-") as folder:
        path = Path(folder) / "float.onnx"
        path.write_bytes(model_onnx)
        return with_float_states(open_session("onnxruntime", path), dataset, keep_recurrent)


def _steps(session: Session, dataset: Dataset) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """(outputs, the feed that gave them) for every step of every sequence, in order."""
    for start, stop in dataset.sequences():
        state = _initial(dataset, start)
        for i in range(start, stop):
            feed = dataset.feed(slice(i, i + 1)) | state
            out = session.run(feed)
            yield out, feed
            state = {name: _fed_back(out, name, rec.output, feed[name]) for name, rec in dataset.recurrent.items()}


def _initial(dataset: Dataset, start: int) -> dict[str, np.ndarray]:
    first = dataset.feed(slice(start, start + 1))
    return {
        name: first[name] if rec.initial == "data" else np.zeros_like(first[name])
        for name, rec in dataset.recurrent.items()
    }


def _fed_back(out: dict[str, np.ndarray], name: str, output: str, fed: np.ndarray) -> np.ndarray:
    if output not in out:
        raise CalibrationError(
            f"input {name!r} is fed back from output {output!r}, which this model's run did not give "
            f"(it gave: {', '.join(out)})",
            f'name the output that gives the next state: --input {name}:from_output=NAME (or "none")',
        )
    state = np.asarray(out[output])
    if state.shape != fed.shape:
        raise CalibrationError(
            f"input {name!r} takes {list(fed.shape)} at one sample per step, and output {output!r} gave "
            f"{list(state.shape)}: it cannot be fed back",
            f"from_output names the output holding the next state, of the input's shape; --input {name}:from_output="
            "none if the data feeds it",
        )
    return state.astype(fed.dtype, copy=False)


def _sample_of(fed: np.ndarray, axis: int | None) -> np.ndarray:
    """One step's feed (batch 1, model layout) → the sample as the dataset stores it (batch axis removed)."""
    return fed if axis is None else np.take(fed, 0, axis=axis)


def add_open_loop_figures(report: dict[str, dict], sessions: dict[str, Session], evalset: Dataset, ref: str) -> None:
    """Beside each candidate's closed-loop fidelity, per output, what open loop (every model fed the float
    model's stored states) would have read: `fidelity[output]["open_loop"]` = {decision_agreement, sqnr_db,
    max_abs_err}; the gap is the drift that only carrying its own state shows."""
    from edgeml.compiler.evaluate import fidelity, run_dataset

    data = evalset.open_loop()
    outputs = {name: run_dataset(session, data) for name, session in sessions.items()}
    for name in sessions:
        for output, f in fidelity(outputs[ref], outputs[name]).items():
            if output in report[name]["fidelity"]:
                report[name]["fidelity"][output]["loop"] = "closed"
                report[name]["fidelity"][output]["open_loop"] = {k: f[k] for k in _OPEN_LOOP_KEYS if k in f}


_OPEN_LOOP_KEYS = ("decision_agreement", "sqnr_db", "max_abs_err", "cosine")

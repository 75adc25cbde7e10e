"""Each corpus builder's data fits its model's input signature, and the task checks see float agree with itself."""

from __future__ import annotations

import json

import corpus
import numpy as np
import pytest
import task_checks

# MiniLM's data is examples/minilm's, tested in tests/examples/test_minilm_example.py (an 87 MB export)
NAMES = [n for n in corpus.ENTRIES if n != "minilm"]
ONNX_DTYPES = {1: np.float32, 7: np.int64, 6: np.int32, 9: np.bool_}


def _onnx_inputs(path):
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    out = {}
    for v in graph.input:
        dims = [
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in v.type.tensor_type.shape.dim
        ]
        out[v.name] = (dims, ONNX_DTYPES[v.type.tensor_type.elem_type])
    return out


@pytest.mark.parametrize("name", NAMES)
def test_samples_are_the_model_inputs_without_their_batch_axis(corpus_model, name):
    folder = corpus_model(name)
    meta = corpus.load_meta(folder)
    model_inputs = _onnx_inputs(folder / "reference.onnx")
    for split in ("calib", "eval"):
        with np.load(folder / f"{split}.npz") as data:
            assert set(data.files) - set(meta.inputs) <= {"edgeml_inputs", "edgeml_sequences"}, data.files
        arrays = corpus.load_samples(folder, split)
        fed = {k for k, spec in meta.inputs.items() if not spec.get("python_int")}
        assert set(arrays) == fed, f"{split}.npz keys {sorted(arrays)} vs inputs {sorted(fed)}"
        counts = {len(a) for a in arrays.values()}
        assert len(counts) == 1 and counts.pop() >= 16
        if name == "silero_vad_jit":  # TorchScript forward(x, sr: int): x is the 512-sample window
            assert arrays["x"].shape[1:] == (512,) and arrays["x"].dtype == np.float32
            continue
        for key, a in arrays.items():
            dims, dtype = model_inputs[key]
            axis = meta.inputs[key]["batch_axis"]
            expected = dims if axis is None else dims[:axis] + dims[axis + 1 :]
            assert a.dtype == dtype, f"{key}: {a.dtype} vs the model's {dtype}"
            assert a.ndim - 1 == len(expected), f"{key}: sample rank {a.ndim - 1} vs {expected}"
            assert all(e is None or e == s for e, s in zip(expected, a.shape[1:], strict=True)), (key, a.shape, dims)


@pytest.mark.parametrize("name", [n for n in NAMES if corpus.ENTRIES[n].task != "vad_jit"])
def test_the_float_model_agrees_with_itself_and_sequences_cover_the_eval_set(corpus_model, name):
    folder = corpus_model(name)
    meta = corpus.load_meta(folder)
    result = task_checks.run_check(folder, task_checks.ort_runner(folder / "reference.onnx"))
    assert result["agree"] == 1.0, result
    if meta.eval_sequences:
        with np.load(folder / "eval.npz") as data:
            n = len(data["edgeml_sequences"])  # one sequence id per sample, as edgeml reads them
            specs = json.loads(str(data["edgeml_inputs"]))
        assert n == len(next(iter(corpus.load_samples(folder, "eval").values())))
        assert {k: v.get("from_output") for k, v in specs.items()} == {
            k: v.get("recurrent") for k, v in meta.inputs.items()
        }
        assert meta.eval_sequences[0][0] == 0 and meta.eval_sequences[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(meta.eval_sequences, meta.eval_sequences[1:], strict=False))


def test_speech_holds_speech_and_silence_in_every_split():
    import speech

    for split in ("calib", "eval"):
        seqs = speech.sequences(split)
        assert len(seqs) >= 6
        for seq in seqs:
            energy = (seq.windows**2).mean(axis=1)
            assert seq.windows.shape[1] == speech.WINDOW and energy.max() > 2 * max(energy.min(), 1e-9)

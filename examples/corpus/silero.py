"""silero-vad (PyPI ``silero-vad``, MIT): the model files its wheel ships, and closed-loop speech data for them.

Files in ``silero_vad/data/`` (located without importing the package):

  silero_vad.onnx            opset 16, the whole graph inside ``If(sr == 16000)``; inputs ``input [N, 576]``
                             (64 samples of context + a 512-sample window), ``state [2, N, 128]``, ``sr`` int64
                             scalar; outputs ``output [N, 1]`` (speech probability), ``stateN``
  silero_vad_16k_op15.onnx   the 16 kHz branch exported flat (121 nodes, Conv + LSTM); same signature
  silero_vad.jit             TorchScript ``forward(x: Tensor[N, 512], sr: int)``; keeps its state inside

The ONNX models are stateful: silero's own wrapper (``utils_vad.OnnxWrapper``) feeds each window with the
previous 64 samples in front and the previous ``stateN`` as ``state``. ``closed_loop()`` does the same, so the
calibration/evaluation samples hold the states the model really meets; each sample is the model's input with
its batch axis removed (``input [576]``, ``state [2, 128]``, ``sr []``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

__all__ = ["CONTEXT", "FILES", "batch_first", "closed_loop", "data_dir", "onnx_samples"]

CONTEXT = 64
FILES = {
    "silero_vad_if": "silero_vad.onnx",
    "silero_vad_flat": "silero_vad_16k_op15.onnx",
    "silero_vad_jit": "silero_vad.jit",
}


def data_dir() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("silero-vad's model files ship in its wheel: pip install silero-vad")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def closed_loop(run, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a stateful VAD over one sequence as silero's wrapper does, batch 1.

    ``run(feeds) -> (prob [1, 1], stateN [2, 1, 128])``. Returns (inputs [T, 576], states fed [T, 2, 128],
    probabilities [T]).
    """
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros((1, CONTEXT), np.float32)
    xs, states, probs = [], [], []
    for window in windows:
        x = np.concatenate([context, window[None, :]], axis=1).astype(np.float32)
        prob, state_n = run({"input": x, "state": state, "sr": np.array(16000, np.int64)})
        xs.append(x[0])
        states.append(state[:, 0])
        probs.append(float(np.asarray(prob).reshape(-1)[0]))
        state, context = np.asarray(state_n, np.float32), x[:, -CONTEXT:]
    return np.stack(xs), np.stack(states), np.asarray(probs, np.float32)


def onnx_samples(model_path: Path, sequences: list) -> tuple[dict[str, np.ndarray], list[list[int]], np.ndarray]:
    """Samples for an ONNX silero model over `sequences` (speech.Sequence), with [start, stop) per sequence and
    the float model's own closed-loop probabilities."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    xs, states, probs, bounds, start = [], [], [], [], 0
    for seq in sequences:
        x, s, p = closed_loop(lambda feeds: session.run(["output", "stateN"], feeds), seq.windows)
        xs.append(x), states.append(s), probs.append(p)
        bounds.append([start, start + len(x)])
        start += len(x)
    n = start
    samples = {"input": np.concatenate(xs), "state": np.concatenate(states), "sr": np.full(n, 16000, np.int64)}
    return samples, bounds, np.concatenate(probs)


def batch_first(src: Path, dst: Path) -> Path:
    """The workaround a user applies by hand today: ``state`` and ``stateN`` as ``[N, 2, 128]`` (Transposes at the
    edges) and ``sr`` folded to the constant 16000, so every input has its batch on axis 0 and none is a scalar."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(src))
    g = model.graph
    for node in list(_all_nodes(g)):
        node.input[:] = ["state_t" if i == "state" else "sr_const" if i == "sr" else i for i in node.input]
        node.output[:] = ["stateN_t" if o == "stateN" else o for o in node.output]
    inputs = [i for i in g.input if i.name not in ("state", "sr")]
    del g.input[:]
    g.input.extend([*inputs, helper.make_tensor_value_info("state", TensorProto.FLOAT, ["N", 2, 128])])
    g.initializer.append(helper.make_tensor("sr_const", TensorProto.INT64, [], [16000]))
    g.node.insert(0, helper.make_node("Transpose", ["state"], ["state_t"], name="state_to_2N128", perm=[1, 0, 2]))
    g.node.append(helper.make_node("Transpose", ["stateN_t"], ["stateN"], name="stateN_to_N2128", perm=[1, 0, 2]))
    for out in g.output:
        if out.name == "stateN":
            out.CopyFrom(helper.make_tensor_value_info("stateN", TensorProto.FLOAT, ["N", 2, 128]))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.g:
                yield from _all_nodes(a.g)

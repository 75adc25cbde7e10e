"""Small ONNX models with the signatures real third-party models have: a paddle2onnx-style negative batch
dim with empty spatial dims, and a stateful model whose state has its batch on axis 1 beside a scalar sample
rate (silero-vad's signature). Built here, seeded, so the tests need no download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def negative_dims_cnn(path: Path) -> Path:
    """x: float32[-1, 3, (empty), (empty)] → Conv 3→4 → Relu → GlobalAveragePool → Flatten → logits [N, 4]."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, None, None])
    for d in x.type.tensor_type.shape.dim[2:]:
        d.Clear()
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3, "w")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="pool"),
        helper.make_node("Flatten", ["g"], ["logits"], name="flatten"),
    ]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [-1, 4])
    return _save(helper.make_graph(nodes, "negdims", [x], [out], [w, b]), path)


def stateful_model(path: Path, state_dims=(2, "batch", 4)) -> Path:
    """x: float32[batch, 8], state: float32[2, batch, 4], sr: int64[] → out [batch, 4], stateN [2, batch, 4].

    out = tanh(x·W + mean(state, axis 0) + sr / 16000); stateN = 0.5·state + out (broadcast on axis 0).
    """
    rng = np.random.default_rng(1)
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8]),
        helper.make_tensor_value_info("state", TensorProto.FLOAT, list(state_dims)),
        helper.make_tensor_value_info("sr", TensorProto.INT64, []),
    ]
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32) * 0.5, "w"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array(16000.0, np.float32), "rate"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"], name="matmul"),
        helper.make_node("ReduceMean", ["state", "axis0"], ["m"], keepdims=0, name="state_mean"),
        helper.make_node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT, name="cast_sr"),
        helper.make_node("Div", ["srf", "rate"], ["srn"], name="sr_norm"),
        helper.make_node("Add", ["xw", "m"], ["a"], name="add_state"),
        helper.make_node("Add", ["a", "srn"], ["a2"], name="add_sr"),
        helper.make_node("Tanh", ["a2"], ["out"], name="tanh"),
        helper.make_node("Mul", ["state", "half"], ["sh"], name="decay"),
        helper.make_node("Add", ["sh", "out"], ["stateN"], name="update"),
    ]
    outputs = [
        helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 4]),
        helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, "batch", 4]),
    ]
    return _save(helper.make_graph(nodes, "stateful", inputs, outputs, inits), path)


def stateful_data(path: Path, n: int = 12, **extra) -> Path:
    rng = np.random.default_rng(2)
    arrays = {
        "x": rng.standard_normal((n, 8)).astype(np.float32),
        "state": rng.standard_normal((2, n, 4)).astype(np.float32),
        "sr": np.int64(16000),
    }
    np.savez(path, **{**arrays, **extra})
    return path


def reference_outputs(x: np.ndarray, state: np.ndarray, sr: int, model: Path) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"x": x, "state": state, "sr": np.array(sr, np.int64)}), strict=True))


def sequence_first_model(path: Path) -> Path:
    """x: float32[batch, 4, width] → Transpose to [width, batch, 4] (as a CRNN feeds its LSTM) → MatMul → Relu →
    back to [batch, 4, width]: internal tensors whose axis 0 is not the batch."""
    rng = np.random.default_rng(3)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, "width"])
    w = numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[2, 0, 1], name="to_sequence_first"),
        helper.make_node("MatMul", ["t", "w"], ["m"], name="matmul"),
        helper.make_node("Relu", ["m"], ["r"], name="relu"),
        helper.make_node("Transpose", ["r"], ["y"], perm=[1, 2, 0], name="to_batch_first"),
    ]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, "width"])
    return _save(helper.make_graph(nodes, "seqfirst", [x], [y], [w]), path)

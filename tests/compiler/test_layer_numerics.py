"""The per-layer probe runs the float model once over the samples and keeps every intermediate tensor."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.intake import onnx_signature
from edgeml.compiler.layer_numerics import LayerProbe


def test_scalar_intermediates_are_kept_across_samples():
    """A transformer's shape arithmetic yields scalars (Gather of a Shape): MiniLM on gpu-ort crashed here."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])  # fixed batch: one feed per sample
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    zero = helper.make_tensor("zero", TensorProto.INT64, [], [0])
    graph = helper.make_graph(
        [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Gather", ["shape", "zero"], ["batch_size"]),  # a 0-d tensor
            helper.make_node("Relu", ["x"], ["y"]),
        ],
        "scalars",
        [x],
        [y],
        [zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = Dataset({"x": np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)})
    probe = LayerProbe(model.SerializeToString(), data, onnx_signature(model), samples=3)
    assert probe.samples == 3
    assert np.array_equal(probe.float_tensor("batch_size"), [1, 1, 1])  # one scalar per sample, stacked
    assert probe.float_tensor("y").shape == (3, 4)
    onnx.checker.check_model(model)

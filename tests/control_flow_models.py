"""Small ONNX models with control flow, each built to show one thing silero-vad's ONNX showed (its whole network
inside an `If` picked by the scalar input `sr`):

- `conv_in_if`: the network (Conv → ReduceMean) inside both branches of an `If` on `sr == 16000`; read from
  the top-level nodes only, its graph kind was "other".
- `internal_output_name`: an `If` on a constant that OpenVINO inlines; after `compile_model` the output port
  carries the branch's internal tensor name beside `output`, and `get_any_name()` returns the internal one.
- `rank_changing_if`: an `If` (on the batch size) whose branches differ in rank feeding a Conv: ONNX Runtime
  runs it, OpenVINO's ONNX frontend cannot convert the Conv (the input's rank is unknown).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["conv_in_if", "internal_output_name", "rank_changing_if", "with_constant"]


def conv_in_if(path: Path) -> Path:
    """x [N, 1, 16], sr int64 scalar → output [N]: mean of a 3-tap Conv, weights picked by sr == 16000."""
    from onnx import TensorProto, helper, numpy_helper

    def branch(name: str, weight: float):
        w = numpy_helper.from_array(np.full((2, 1, 3), weight, np.float32), f"{name}_w")
        nodes = [
            helper.make_node("Constant", [], [f"{name}_w"], value=w),
            helper.make_node("Conv", ["x", f"{name}_w"], [f"{name}_c"], name=f"{name}/Conv", pads=[1, 1]),
            helper.make_node("ReduceMean", [f"{name}_c"], [f"{name}_out"], name=f"{name}/ReduceMean", axes=[1, 2],
                             keepdims=0),
        ]  # fmt: skip
        return helper.make_graph(
            nodes, name, [], [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, None)]
        )

    nodes = [
        helper.make_node("Equal", ["sr", "k16"], ["cond"], name="is_16k"),
        helper.make_node("If", ["cond"], ["output"], name="If_0", then_branch=branch("then", 1.0),
                         else_branch=branch("else", 2.0)),
    ]  # fmt: skip
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 16]),
              helper.make_tensor_value_info("sr", TensorProto.INT64, [])]  # fmt: skip
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N"])]
    k16 = numpy_helper.from_array(np.array(16000, np.int64), "k16")
    return _save(path, helper.make_graph(nodes, "conv_in_if", inputs, outputs, [k16]))


def with_constant(path: Path, source: Path, name: str, value: np.ndarray) -> Path:
    """`source` with input `name` turned into a constant (an initializer): what fixing `sr` makes of the model."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(source)
    model.graph.input.remove(next(i for i in model.graph.input if i.name == name))
    model.graph.initializer.append(numpy_helper.from_array(value, name))
    onnx.save(model, path)
    return path


def internal_output_name(path: Path) -> Path:
    """x [N, 4] → output [N, 1] = mean(relu(x)) inside an `If` on a constant; the branch's tensor is named
    `F0_branch_out`, which sorts before `output` (OpenVINO's `get_any_name()` picks it)."""
    from onnx import TensorProto, helper

    def branch(name: str, op: str):
        nodes = [
            helper.make_node(op, ["x"], [f"{name}_a"], name=f"{name}/{op}"),
            helper.make_node("ReduceMean", [f"{name}_a"], [f"F0_{name}_out"], name=f"{name}/ReduceMean", axes=[1],
                             keepdims=1),
        ]  # fmt: skip
        out = helper.make_tensor_value_info(f"F0_{name}_out", TensorProto.FLOAT, None)
        return helper.make_graph(nodes, name, [], [out])

    cond = helper.make_tensor("c", TensorProto.BOOL, [], [True])
    nodes = [
        helper.make_node("Constant", [], ["cond"], value=cond),
        helper.make_node("If", ["cond"], ["output"], name="If_0", then_branch=branch("then", "Relu"),
                         else_branch=branch("else", "Neg")),
    ]  # fmt: skip
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1])]
    return _save(path, helper.make_graph(nodes, "internal_output_name", inputs, outputs))


def rank_changing_if(path: Path) -> Path:
    """x [N, 1, 16] → `If` N == 8000: Squeeze (rank 2), else Identity (rank 3) → Conv `encoder/Conv` → Sigmoid.
    ONNX Runtime runs it on smaller batches; OpenVINO cannot know the Conv input's rank."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array(8000, np.int64), "k8"),
             numpy_helper.from_array(np.full((2, 1, 3), 0.5, np.float32), "w"),
             numpy_helper.from_array(np.array([1], np.int64), "axis"),
             numpy_helper.from_array(np.array(0, np.int64), "first")]  # fmt: skip
    narrow = helper.make_graph([helper.make_node("Squeeze", ["x", "axis"], ["narrow"], name="narrow/Squeeze")],
                               "then", [], [_any_shape("narrow")])  # fmt: skip
    wide = helper.make_graph([helper.make_node("Identity", ["x"], ["wide"], name="wide/Identity")], "else", [],
                             [_any_shape("wide")])  # fmt: skip
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "first"], ["batch"], name="batch", axis=0),
        helper.make_node("Equal", ["batch", "k8"], ["cond"], name="is_8k"),
        helper.make_node("If", ["cond"], ["frames"], name="If_0", then_branch=narrow, else_branch=wide),
        helper.make_node("Conv", ["frames", "w"], ["features"], name="encoder/Conv", pads=[1, 1]),
        helper.make_node("Sigmoid", ["features"], ["output"], name="head"),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 16])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2, 16])]
    return _save(path, helper.make_graph(nodes, "rank_changing_if", inputs, outputs, inits))


def _any_shape(name: str):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)


def _save(path: Path, graph) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path

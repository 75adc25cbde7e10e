"""ONNX graph → the TFLite builtin operator each node becomes through litert-torch (as edgeml lowers it), with
the NHWC shapes and attributes Vela's placement rules look at, and each node's multiply-accumulates.

The TFLite targets' pre-flight checks read the ONNX graph (checked before any conversion, in milliseconds),
so this table is the bridge: what each ONNX op turns into at batch 1, channels-last. Activations that the
TFLite converter fuses into the op before them (Relu after Conv/Gemm/Add, …) become no operator of their
own; shape-only ops become RESHAPE. An op missing from the table has no TFLite builtin this stack produces.
A few ops litert-torch decomposes are listed by their last operator (ReduceL2, e.g. MiniLM's L2 norm:
ABS, MUL, SUM → SQRT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["UNMAPPED", "TfliteOp", "tflite_ops"]

_SAME = {
    "Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Div": "DIV", "Pow": "POW", "Sqrt": "SQRT", "Exp": "EXP",
    "Log": "LOG", "Abs": "ABS", "Neg": "NEG", "Max": "MAXIMUM", "Min": "MINIMUM", "Sin": "SIN", "Cos": "COS",
    "Floor": "FLOOR", "Ceil": "CEIL", "Round": "ROUND", "Sign": "SIGN", "Erf": "GELU", "Gelu": "GELU",
    "Sigmoid": "LOGISTIC", "Tanh": "TANH", "HardSwish": "HARD_SWISH", "LeakyRelu": "LEAKY_RELU", "Elu": "ELU",
    "PRelu": "PRELU", "Softmax": "SOFTMAX", "LogSoftmax": "LOG_SOFTMAX", "MaxPool": "MAX_POOL_2D",
    "AveragePool": "AVERAGE_POOL_2D", "GlobalAveragePool": "MEAN", "GlobalMaxPool": "REDUCE_MAX",
    "ReduceMean": "MEAN", "ReduceSum": "SUM", "ReduceMax": "REDUCE_MAX", "ReduceMin": "REDUCE_MIN",
    "ReduceProd": "REDUCE_PROD", "ReduceL2": "SQRT", "Concat": "CONCATENATION", "Transpose": "TRANSPOSE",
    "Slice": "STRIDED_SLICE",
    "Split": "SPLIT_V", "Pad": "PAD", "Tile": "TILE", "Expand": "BROADCAST_TO", "Gather": "GATHER",
    "Cast": "CAST", "ArgMax": "ARG_MAX", "ArgMin": "ARG_MIN", "Equal": "EQUAL", "Greater": "GREATER",
    "Less": "LESS", "GreaterOrEqual": "GREATER_EQUAL", "LessOrEqual": "LESS_EQUAL", "Not": "LOGICAL_NOT",
    "And": "LOGICAL_AND", "Or": "LOGICAL_OR", "Where": "SELECT_V2", "ConvTranspose": "TRANSPOSE_CONV",
    "Reciprocal": "DIV", "Range": "RANGE", "CumSum": "CUMSUM", "TopK": "TOPK_V2",
    "LSTM": "UNIDIRECTIONAL_SEQUENCE_LSTM", "DepthToSpace": "DEPTH_TO_SPACE", "SpaceToDepth": "SPACE_TO_DEPTH",
    "Shape": "SHAPE", "Size": "SIZE",
    "BatchNormalization": "MUL", "InstanceNormalization": "MEAN", "LayerNormalization": "MEAN",
    "Resize": "RESIZE_NEAREST_NEIGHBOR", "ScatterND": "SCATTER_ND", "GatherND": "GATHER_ND", "Einsum": "BATCH_MATMUL",
}  # fmt: skip
UNMAPPED = ""  # the op has no TFLite builtin that this stack produces
_RESHAPES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}
_FOLDED = {"Identity", "Dropout", "Constant", "ConstantOfShape"}
_FUSED_ACTIVATIONS = {"Relu": "RELU", "Clip": "RELU6"}
_FUSES_ACTIVATION = {"Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "MaxPool", "AveragePool", "ConvTranspose"}


@dataclass(frozen=True)
class TfliteOp:
    node: str  # the ONNX node's name
    onnx_op: str
    tflite_op: str | None  # None: no operator of its own (folded, fused); UNMAPPED: no TFLite builtin
    macs: int = 0
    ifm: tuple[int, ...] = ()  # first input, NHWC for 4-D tensors, batch 1
    ofm: tuple[int, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)  # kernel, strides, dilations, pads, axes, group
    inputs: tuple[str, ...] = ()  # ONNX value names
    outputs: tuple[str, ...] = ()


def tflite_ops(model: Any) -> list[TfliteOp]:
    """One entry per ONNX node of `model` (a parsed ModelProto), in graph order."""
    shapes = _batch1_shapes(model)
    initializers = {i.name: i for i in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    return [_op(node, shapes, initializers, producers) for node in model.graph.node]


def _op(
    node: Any, shapes: dict[str, tuple[int, ...]], initializers: dict[str, Any], producers: dict[str, Any]
) -> TfliteOp:
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type.startswith("Reduce") or node.op_type.startswith("Global"):
        attrs["axes_nhwc"] = _reduced_axes_nhwc(node, attrs, len(shapes.get(node.input[0], ())), initializers)
    ifm = shapes.get(node.input[0], ()) if node.input else ()
    ofm = shapes.get(node.output[0], ()) if node.output else ()
    name = node.name or node.output[0]
    kind = _tflite_kind(node, attrs, ifm, initializers, producers)
    macs = _macs(node, attrs, ifm, ofm, shapes)
    return TfliteOp(
        name, node.op_type, kind, macs, _nhwc(ifm), _nhwc(ofm), attrs, tuple(node.input), tuple(node.output)
    )


def _tflite_kind(node: Any, attrs: dict, ifm: tuple, initializers: dict[str, Any], producers: dict) -> str | None:
    op = node.op_type
    if op in _FOLDED:
        return None
    if op in _FUSED_ACTIVATIONS:
        return None if _produced_by(node, producers) in _FUSES_ACTIVATION else _FUSED_ACTIVATIONS[op]
    if op in _RESHAPES:
        return "RESHAPE"
    if op == "Conv":
        channels, group = (ifm[1] if len(ifm) > 1 else 0), attrs.get("group", 1)
        return "DEPTHWISE_CONV_2D" if channels == 1 or (group > 1 and group == channels) else "CONV_2D"
    if op in ("Gemm", "MatMul"):
        return "FULLY_CONNECTED" if op == "Gemm" or node.input[1] in initializers else "BATCH_MATMUL"
    if op == "Resize" and attrs.get("mode", b"nearest") in (b"linear", "linear"):
        return "RESIZE_BILINEAR"
    if op == "BatchNormalization" and _produced_by(node, producers) in ("Conv", "ConvTranspose", "Gemm"):
        return None  # folded into the weights of the op before it
    return _SAME.get(op, UNMAPPED) if node.domain in ("", "ai.onnx") else UNMAPPED


def _produced_by(node: Any, producers: dict[str, Any]) -> str | None:
    before = producers.get(node.input[0]) if node.input else None
    return before.op_type if before is not None else None


def _reduced_axes_nhwc(node: Any, attrs: dict, rank: int, initializers: dict[str, Any]) -> tuple[int, ...]:
    """The reduced axes in the TFLite tensor's layout (NHWC for 4-D); all axes when the node names none."""
    from onnx import numpy_helper

    if node.op_type.startswith("Global"):
        axes = list(range(2, rank))
    elif "axes" in attrs:
        axes = list(attrs["axes"])
    elif len(node.input) > 1 and node.input[1] in initializers:
        axes = [int(a) for a in numpy_helper.to_array(initializers[node.input[1]]).ravel()]
    else:
        axes = list(range(rank))
    axes = sorted(a % rank for a in axes) if rank else axes
    return tuple(sorted({0: 0, 1: 3, 2: 1, 3: 2}[a] for a in axes)) if rank == 4 else tuple(axes)


def _macs(node: Any, attrs: dict, ifm: tuple, ofm: tuple, shapes: dict[str, tuple[int, ...]]) -> int:
    if node.op_type in ("Conv", "ConvTranspose") and len(ifm) >= 3 and ofm:
        kernel = math.prod(attrs.get("kernel_shape", shapes.get(node.input[1], (0, 0, 1))[2:]))
        per_output = ifm[1] // max(1, attrs.get("group", 1)) * kernel
        return math.prod(ofm if node.op_type == "Conv" else ifm) * per_output
    if node.op_type in ("Gemm", "MatMul") and ifm and ofm:
        return math.prod(ofm) * ifm[-1]
    return 0


def _nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else shape


def _batch1_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Static shapes of every value at batch 1 (the TFLite targets convert at batch 1); unknown dims → 1."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for value in copy.graph.input:
        dims = value.type.tensor_type.shape.dim
        if len(dims) and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(copy, data_prop=True)
    values = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    shapes = {v.name: tuple(d.dim_value or 1 for d in v.type.tensor_type.shape.dim) for v in values}
    shapes |= {i.name: tuple(i.dims) for i in model.graph.initializer}
    return shapes

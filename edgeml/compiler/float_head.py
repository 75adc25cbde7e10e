"""A float ONNX model → its head: the ops between the last weighted layer and each output, as one group the
accuracy-aware search can keep in float (edgeml/compiler/mixed_precision_search.py).

A detector's post-processing (Sigmoid on box and score branches, box arithmetic, the Concat of 4 box
coordinates up to 320 beside scores below 0.1) has no weights, and INT8 hurts it most: one per-tensor scale
on the Concat rounds every score to 0 (PITFALLS.md). Its users keep it out of quantization by hand
(Ultralytics' OpenVINO INT8 export: NNCF `ignored_scope` on the head); here it is a candidate the search
measures like any layer, through each target's own mechanism (ONNX Runtime `nodes_to_exclude`, NNCF
`IgnoredScope`).

The walk starts at the graph outputs and follows producers upstream, stopping at a weighted layer (Conv,
ConvTranspose, Gemm, MatMul with a constant weight: the model's work, which stays INT8) and at the graph
inputs. Shape arguments (a Reshape's target shape, a Resize's scales) are not followed: they are integer
side computations, not the head's values.
"""

from __future__ import annotations

from typing import Any

from edgeml.compiler.quantized_layers import QuantizedLayer

__all__ = ["FLOAT_HEAD", "MAX_HEAD_NODES", "float_head", "float_head_layer"]

FLOAT_HEAD = "float head"
MAX_HEAD_NODES = 48  # more than this between the outputs and the last weighted layer is not a head
_WEIGHTED = {"Conv", "ConvTranspose", "Gemm", "MatMul", "QLinearConv", "QLinearMatMul"}
_DATA_INPUTS = {  # ops whose other inputs are shapes, scales or indices (not followed)
    "Reshape": 1, "Expand": 1, "Tile": 1, "Slice": 1, "Resize": 1, "Upsample": 1, "Pad": 1, "Squeeze": 1,
    "Unsqueeze": 1, "TopK": 1, "Split": 1, "Gather": 1, "GatherElements": 1, "ReduceMean": 1, "ReduceSum": 1,
}  # fmt: skip
_NOT_HEAD = {"Shape", "Constant", "ConstantOfShape", "Size"}


def float_head(proto: Any) -> tuple[str, ...]:
    """The names of the nodes between the last weighted layer and the outputs, in graph order; () where the
    outputs come straight from weighted layers or the head would be larger than `MAX_HEAD_NODES`."""
    graph = proto.graph
    constants = {i.name for i in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output
    }
    producers = {out: n for n in graph.node for out in n.output if out}
    head: set[int] = set()
    todo = [o.name for o in graph.output]
    while todo:
        node = producers.get(todo.pop())
        if node is None or id(node) in head or node.op_type in _NOT_HEAD or _weighted(node, constants):
            continue
        head.add(id(node))
        if len(head) > MAX_HEAD_NODES:
            return ()
        todo.extend(i for i in node.input[: _DATA_INPUTS.get(node.op_type, len(node.input))] if i)
    return tuple(n.name for n in graph.node if id(n) in head and n.name)


def float_head_layer(proto: Any, known: set[str]) -> QuantizedLayer | None:
    """The head as one adjustable layer for the search, holding those of its nodes the target can name
    (`known`: what its mixed plan takes); None where the model has no head."""
    ops = {n.name: n.op_type for n in proto.graph.node}
    members = tuple(n for n in float_head(proto) if n in known)
    if not members:
        return None
    label = "+".join(dict.fromkeys(ops[n] for n in members))
    return QuantizedLayer(
        FLOAT_HEAD, label, "", int8=True, has_weights=False, own_scale=True, int8_range=None, members=members
    )


def _weighted(node: Any, constants: set[str]) -> bool:
    return node.op_type in _WEIGHTED and any(i in constants for i in node.input[1:2])

"""A QDQ ONNX model → its layers: which compute nodes run in INT8, which stay in float, and the INT8 range
each layer's output is rounded into.

A layer is a node other than QuantizeLinear/DequantizeLinear. It runs in INT8 when an input arrives
through a DequantizeLinear. Its name is the float model's node name (what `QuantizeStatic`'s
`exclude_nodes` takes). ONNX Runtime folds a Relu into the Conv before it, so the Conv's output tensor
carries the Relu's name: `fused` records that, from the float model.

`weights` is how many weight elements a layer has (its quantized weight initializers, biases not counted):
what keeping it in float costs in bytes, and a proxy for the work it adds in float. The accuracy-aware search
weighs a layer's recovered SQNR against it (edgeml/compiler/mixed_precision_search.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["QuantizedLayer", "quantized_layers"]

_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
_INPUT_SUFFIX = "_QuantizeLinear_Input"  # ORT renames a graph output it quantizes


@dataclass(frozen=True)
class QuantizedLayer:
    name: str
    op: str
    output: str  # the tensor this layer produces, by its float-model name
    int8: bool  # its inputs arrive through DequantizeLinear
    has_weights: bool  # a constant (initializer) input: weights that get quantized
    own_scale: bool  # its output is rounded with a scale of its own (not its input's): a new rounding step
    int8_range: tuple[float, float] | None  # what its output's QuantizeLinear can represent
    fused: str = ""  # op(s) of the float model folded into it, e.g. "Relu"
    raw_output: str = ""  # its output in the QDQ model, before rounding
    rounded_output: str = ""  # … after QuantizeLinear → DequantizeLinear: what the next layer reads
    inputs_from: tuple[str, ...] = ()  # the raw outputs (or graph inputs) its activation inputs come from
    weights: int = 0  # weight elements (biases not counted): what it costs in float; 0 where it has none
    members: tuple[str, ...] = ()  # a group kept in float together (the float head): its node names

    @property
    def keeps(self) -> tuple[str, ...]:
        """The node names keeping it in float means: its members, or itself."""
        return self.members or (self.name,)

    @property
    def adjustable(self) -> bool:
        """Keeping it in float can change the numerics: it has quantized weights or rounds its output anew."""
        return self.int8 and (self.has_weights or self.own_scale)

    @property
    def label(self) -> str:
        return f"{self.op}+{self.fused}" if self.fused else self.op


def quantized_layers(qdq: Any, float_model: Any | None = None) -> list[QuantizedLayer]:
    """`qdq` and `float_model` are ModelProtos; every non-Q/DQ node of `qdq`, in graph order."""
    nodes = list(qdq.graph.node)
    producers = {out: n for n in nodes for out in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in nodes:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    inits = {i.name: i for i in qdq.graph.initializer}
    float_producers = {out: n for n in float_model.graph.node for out in n.output} if float_model is not None else {}
    layers = []
    for node in nodes:
        if node.op_type in _QDQ_OPS or not node.output:
            continue
        dq_inputs = [producers[i] for i in node.input if i in producers and producers[i].op_type == "DequantizeLinear"]
        quant = next((c for c in consumers.get(node.output[0], []) if c.op_type == "QuantizeLinear"), None)
        dequant = (
            next((c for c in consumers.get(quant.output[0], []) if c.op_type == "DequantizeLinear"), None)
            if quant
            else None
        )
        in_scales = {d.input[1] for d in dq_inputs}
        output = node.output[0].removesuffix(_INPUT_SUFFIX)
        float_producer = float_producers.get(output)
        fused = float_producer.op_type if float_producer is not None and float_producer.name != node.name else ""
        layers.append(
            QuantizedLayer(
                name=node.name,
                op=node.op_type,
                output=output,
                int8=bool(dq_inputs),
                has_weights=any(d.input[0] in inits for d in dq_inputs if not _is_bias(d)),
                own_scale=quant is not None and quant.input[1] not in in_scales,
                int8_range=_range(quant, inits) if quant is not None else None,
                fused=fused,
                raw_output=node.output[0],
                rounded_output=dequant.output[0] if dequant is not None else node.output[0],
                inputs_from=tuple(u for u in (_upstream(i, producers) for i in node.input if i) if u not in inits),
                weights=sum(_elements(inits[d.input[0]]) for d in dq_inputs if d.input[0] in inits and not _is_bias(d)),
            )
        )
    return layers


def _upstream(tensor: str, producers: dict[str, Any]) -> str:
    """Back through DequantizeLinear/QuantizeLinear to the tensor a layer (or the graph) produced."""
    while tensor in producers and producers[tensor].op_type in _QDQ_OPS:
        tensor = producers[tensor].input[0]
    return tensor


def _elements(tensor: Any) -> int:
    return int(np.prod(tensor.dims, dtype=np.int64))


def _is_bias(dq: Any) -> bool:
    return dq.input[0].endswith("bias_quantized")


def _range(quant: Any, inits: dict[str, Any]) -> tuple[float, float] | None:
    from onnx import numpy_helper

    if quant.input[1] not in inits or len(quant.input) < 3 or quant.input[2] not in inits:
        return None
    scale = numpy_helper.to_array(inits[quant.input[1]]).astype(np.float64)
    zero = numpy_helper.to_array(inits[quant.input[2]])
    if scale.size != 1:
        return None
    info = np.iinfo(zero.dtype)
    z = float(zero.reshape(-1)[0])
    s = float(scale.reshape(-1)[0])
    return (s * (info.min - z), s * (info.max - z))

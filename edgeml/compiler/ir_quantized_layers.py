"""An NNCF-quantized OpenVINO IR → its INT8 layers, each named by the ONNX node it was converted from (what
`QuantizeWithNNCFConfig.ignored` takes), for the accuracy-aware search on the OpenVINO targets.

NNCF quantizes an op by putting FakeQuantize on its inputs: on activations (a FakeQuantize node, possibly
a few quantization-agnostic ops upstream: NNCF moves a Conv's input quantizer above a MaxPool) and on
weights (low-bit constants decompressed by Convert → Multiply, or a FakeQuantize on a constant). A layer is
an op with such an input, other than those agnostic ops themselves. Several OpenVINO ops from one ONNX node
(a Gemm becomes MatMul + Add) are one layer. A layer's `weights` is the element count of its quantized
weights (the largest constant behind each: the weight itself, not its scales or zero points).
"""

from __future__ import annotations

import math
from typing import Any

from edgeml.compiler.lowerings.onnx_origins import OnnxOrigins
from edgeml.compiler.quantized_layers import QuantizedLayer

__all__ = ["ir_onnx_nodes", "ir_quantized_layers"]

_NOT_LAYERS = {"Constant", "Parameter", "Result", "FakeQuantize", "Convert"}
_LOW_BIT = {"i8", "u8", "i4", "u4", "nf4"}
# NOTE: Concat is not in NNCF's agnostic group, but NNCF unifies its inputs' scales for the op after it
_EXTRA_AGNOSTIC = {"Concat"}


def ir_quantized_layers(xml: bytes, weights: bytes, onnx_proto: Any) -> list[QuantizedLayer]:
    """The IR's INT8 layers in graph order; `onnx_proto` is the ONNX model the IR was converted from."""
    import openvino as ov

    model = ov.Core().read_model(xml, weights)
    origins = OnnxOrigins(onnx_proto)
    walk = _Walk(_agnostic_types())
    found: dict[str, QuantizedLayer] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() in _NOT_LAYERS or op.get_type_name() in walk.agnostic:
            continue
        sources = [i.get_source_output().get_node() for i in op.inputs()]
        activations = [s for s in sources if not walk.constant(s)]
        quantized_weights = [s for s in sources if walk.constant(s) and walk.low_bit(s)]
        activations_q = any(walk.from_fake_quantize(s) for s in activations)
        if not activations or not (quantized_weights or activations_q):
            continue
        origin = origins.of(op.get_friendly_name())
        if origin in found:
            continue
        found[origin] = QuantizedLayer(
            name=origin,
            op=origins.op_type(origin, op.get_type_name()),
            output=origins.outputs.get(origin, op.get_friendly_name()),
            int8=True,
            has_weights=bool(quantized_weights),
            own_scale=activations_q,
            int8_range=None,
            weights=sum(walk.largest_constant(s) for s in quantized_weights),
        )
    return list(found.values())


def ir_onnx_nodes(xml: bytes, weights: bytes, onnx_proto: Any) -> tuple[set[str], set[str]]:
    """(the ONNX nodes some op of the IR comes from: what NNCF's ignored scope can name, those of them whose op
    reads or feeds a FakeQuantize: what INT8 rounds)."""
    import openvino as ov

    origins = OnnxOrigins(onnx_proto)
    named: set[str] = set()
    rounding: set[str] = set()
    for op in ov.Core().read_model(xml, weights).get_ordered_ops():
        if op.get_type_name() in _NOT_LAYERS:
            continue
        origin = origins.of(op.get_friendly_name())
        named.add(origin)
        near = [i.get_source_output().get_node() for i in op.inputs()]
        near += [t.get_node() for o in op.outputs() for t in o.get_target_inputs()]
        if any(n.get_type_name() == "FakeQuantize" for n in near):
            rounding.add(origin)
    return named, rounding


def _agnostic_types() -> set[str]:
    """OpenVINO op types NNCF quantizes through rather than at (MaxPool, Reshape, …)."""
    from nncf.common.graph.operator_metatypes import get_all_aliases
    from nncf.openvino.graph.metatypes.groups import QUANTIZE_AGNOSTIC_OPERATIONS

    return set(get_all_aliases(*QUANTIZE_AGNOSTIC_OPERATIONS)) | _EXTRA_AGNOSTIC


class _Walk:
    """Memoised questions about an op's inputs, walking upstream."""

    def __init__(self, agnostic: set[str]) -> None:
        self.agnostic = agnostic
        self._constant: dict[int, bool] = {}

    def constant(self, node: Any) -> bool:
        """Computed from constants only (weights and their decompression)."""
        key = id(node)
        if key not in self._constant:
            if node.get_type_name() == "Constant":
                self._constant[key] = True
            elif node.get_type_name() == "Parameter" or not node.inputs():
                self._constant[key] = False
            else:
                self._constant[key] = all(self.constant(i.get_source_output().get_node()) for i in node.inputs())
        return self._constant[key]

    def low_bit(self, node: Any) -> bool:
        """A constant subgraph holding low-bit integer weights or a FakeQuantize: quantized weights."""
        if node.get_type_name() == "FakeQuantize":
            return True
        if node.get_type_name() == "Constant":
            return node.get_output_element_type(0).get_type_name() in _LOW_BIT
        return any(self.low_bit(i.get_source_output().get_node()) for i in node.inputs())

    def largest_constant(self, node: Any) -> int:
        """The element count of the largest Constant in a constant subgraph: its weight tensor."""
        if node.get_type_name() == "Constant":
            return math.prod(node.get_output_shape(0))
        return max((self.largest_constant(i.get_source_output().get_node()) for i in node.inputs()), default=0)

    def from_fake_quantize(self, node: Any) -> bool:
        """An activation rounded by a FakeQuantize, directly or through quantization-agnostic ops."""
        while node.get_type_name() in self.agnostic and node.inputs():
            node = node.input(0).get_source_output().get_node()
        return node.get_type_name() == "FakeQuantize"

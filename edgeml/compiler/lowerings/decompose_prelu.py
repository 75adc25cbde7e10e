"""PReLU in an exported FX graph → `x + (α − 1) · min(x, 0)`: three operators the PT2E quantizer can put in int8.

litert-torch lowers PReLU to float RELU/MUL/MUL/SUB after quantization, so a PT2E observer never sees its
intermediates and every PReLU stays float (on an Ethos-U, four Cortex-M operators with a DEQUANTIZE and a
QUANTIZE around them). Rewritten before `prepare_pt2e` into MINIMUM (x, 0), the scaling by α − 1 (a 1×1
depthwise convolution on feature maps, a MUL by a constant otherwise) and ADD x, each intermediate gets an
observer, so the TFLite model has three int8 operators that Vela maps (MINIMUM shares x's scale, as Vela
requires). Exact in float: for x ≥ 0 it is x, for x < 0 it is α·x.
The new nodes keep the PReLU's module stack, so `keep_float` and per-layer numerics still find the layer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRELU_PARTS", "decompose_prelu"]

PRELU_PARTS = "edgeml_prelu"  # node.meta key on the three new nodes: which part of which PReLU they are


def decompose_prelu(graph: Any) -> int:
    """Rewrite every `aten.prelu` of `graph` (a torch.fx.GraphModule) in place; returns how many."""
    import torch

    prelus = [n for n in graph.graph.nodes if n.op == "call_function" and n.target == torch.ops.aten.prelu.default]
    for index, node in enumerate(prelus):
        _rewrite(graph, node, index)
    if prelus:
        graph.graph.eliminate_dead_code()
        graph.recompile()
    return len(prelus)


def _rewrite(graph: Any, node: Any, index: int) -> None:
    import torch

    x, weight = node.args
    rank = len(x.meta["val"].shape)
    slopes = _constant(graph, weight).detach().reshape(-1) - 1.0
    channels = slopes.numel()
    # NOTE: on 4-D maps the scaling is a 1×1 depthwise convolution: Vela streams its per-channel weights like
    # any convolution's, where a MUL by a broadcast constant reads that constant from flash for every element
    # (P-Net's first PReLU: 12.8k cycles, 5× its convolution's). Constants have the input's rank: litert-torch moves
    # an element-wise op to channels-last only when every input is 4-D.
    zero = _register(graph, f"_edgeml_prelu{index}_zero", torch.zeros([1] * rank))
    shape = (channels, 1, 1, 1) if rank == 4 else (1, channels, *([1] * max(rank - 2, 0)))
    scale = _register(graph, f"_edgeml_prelu{index}_alpha_minus_one", slopes.reshape(shape))
    aten = torch.ops.aten
    with graph.graph.inserting_before(node):
        zero_node, scale_node = graph.graph.get_attr(zero), graph.graph.get_attr(scale)
        negative = graph.graph.call_function(aten.minimum.default, (x, zero_node))
        if rank == 4:
            scaled = graph.graph.call_function(
                aten.conv2d.default, (negative, scale_node, None, [1, 1], [0, 0], [1, 1], channels)
            )
        else:
            scaled = graph.graph.call_function(aten.mul.Tensor, (negative, scale_node))
        out = graph.graph.call_function(aten.add.Tensor, (x, scaled))
    for part, new in (("zero", zero_node), ("scale", scale_node), ("min", negative), ("mul", scaled), ("add", out)):
        new.meta.update({k: v for k, v in node.meta.items() if k in ("nn_module_stack", "stack_trace")})
        new.meta[PRELU_PARTS] = (index, part)
    negative.meta["val"] = scaled.meta["val"] = out.meta["val"] = node.meta.get("val")
    node.replace_all_uses_with(out)


def _constant(graph: Any, node: Any) -> Any:
    if node.op != "get_attr":
        raise ValueError(f"PReLU weight {node.name} is not a constant of the graph")
    value = graph
    for part in node.target.split("."):
        value = getattr(value, part)
    return value


def _register(graph: Any, name: str, value: Any) -> str:
    graph.register_buffer(name, value.contiguous())
    return name

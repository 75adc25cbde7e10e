"""PT2E annotations for the operators litert-torch's quantizer leaves in float but an int8 NPU runs.

litert-torch 0.10's `PT2EQuantizer` annotates conv/linear/add/mul/cat/pooling patterns and sigmoid; every
other operator keeps float inputs and outputs, and on an Ethos-U each one falls back to the Cortex-M with a
DEQUANTIZE/QUANTIZE pair around it. This adds int8 annotations, after the stock patterns, for the operators
below: each converts to one int8 TFLite operator that Vela's constraint table maps (LEAKY_RELU, HARD_SWISH,
TANH, RELU, AVERAGE_POOL_2D, SUB, SOFTMAX) and the three parts of a decomposed PReLU (decompose_prelu.py).
Scales follow the TFLite int8 kernels: TANH's output is fixed at 1/128, SOFTMAX's at 1/256 (zero point
−128), and RELU, AVERAGE_POOL_2D and the PReLU's MINIMUM share their input's scale.
An operator is annotated only when its input already is int8 (it never quantizes a float island's edge),
and the quantizer's filter (keep_float layers) is honoured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeml.compiler.lowerings.decompose_prelu import PRELU_PARTS

__all__ = ["NPU_OPERATORS", "annotate_npu_operators"]

# aten operator name → how its output is quantized: "own" (its own observer), "shared" (the input's scale),
# or (scale, zero point) fixed by the TFLite kernel.
NPU_OPERATORS: dict[str, Any] = {
    "leaky_relu.default": "own",
    "hardswish.default": "own",
    "sub.Tensor": "own",
    "relu.default": "shared",
    "avg_pool2d.default": "shared",
    "tanh.default": (1 / 128, 0),
    "softmax.int": (1 / 256, -128),
    "_softmax.default": (1 / 256, -128),
}


def annotate_npu_operators(model: Any, config: Any, filter_fn: Callable[[Any], bool] | None = None) -> None:
    """Annotate `model` (the graph `prepare_pt2e` is given) in place, after the stock PT2E patterns."""
    for node in model.graph.nodes:
        if node.op != "call_function" or _annotated(node) or (filter_fn is not None and not filter_fn(node)):
            continue
        if PRELU_PARTS in node.meta:
            _annotate_prelu_part(node, config)
        elif _name(node) in NPU_OPERATORS and _is_int8(node.args[0]):
            _annotate(node, _input_specs(node, config), _output_spec(node, config))


def _annotate_prelu_part(node: Any, config: Any) -> None:
    from torchao.quantization.pt2e.quantizer import SharedQuantizationSpec

    _, part = node.meta[PRELU_PARTS]
    x, other = node.args
    if part == "min" and _is_int8(x):  # NOTE: Vela's MINIMUM needs both inputs and the output at one scale
        shared = SharedQuantizationSpec(x)
        _annotate(node, {x: config.input_activation, other: shared}, shared)
    elif part == "mul" and _is_int8(x):
        _annotate(node, {x: config.input_activation, other: _per_tensor_constant(config)}, config.output_activation)
    elif part == "add" and _is_int8(x) and _is_int8(other):
        _annotate(node, {x: config.input_activation, other: config.input_activation}, config.output_activation)


def _input_specs(node: Any, config: Any) -> dict[Any, Any]:
    """The tensor inputs (a SUB's two operands; the others' one) at the activation spec."""
    from torch.fx import Node

    tensors = node.args[:2] if NPU_OPERATORS[_name(node)] == "own" else node.args[:1]
    return {a: config.input_activation for a in tensors if isinstance(a, Node)}


def _output_spec(node: Any, config: Any) -> Any:
    from torchao.quantization.pt2e.quantizer import FixedQParamsQuantizationSpec, SharedQuantizationSpec

    kind = NPU_OPERATORS[_name(node)]
    if kind == "own":
        return config.output_activation
    if kind == "shared":
        return SharedQuantizationSpec((node.args[0], node))
    scale, zero_point = kind
    return FixedQParamsQuantizationSpec(
        dtype=config.output_activation.dtype, scale=scale, zero_point=zero_point, quant_min=-128, quant_max=127
    )


def _per_tensor_constant(config: Any) -> Any:
    """The PReLU's slopes as an int8 constant with one scale (Vela: "Per-axis quantization is not supported")."""
    import torch
    from torchao.quantization.pt2e import MinMaxObserver
    from torchao.quantization.pt2e.quantizer import QuantizationSpec

    return QuantizationSpec(
        dtype=torch.int8,
        quant_min=-127,
        quant_max=127,
        qscheme=torch.per_tensor_symmetric,
        observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12),
    )


def _annotate(node: Any, inputs: dict[Any, Any], output: Any) -> None:
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    node.meta["quantization_annotation"] = QuantizationAnnotation(
        input_qspec_map=inputs, output_qspec=output, _annotated=True
    )


def _annotated(node: Any) -> bool:
    annotation = node.meta.get("quantization_annotation")
    return annotation is not None and annotation._annotated


def _is_int8(node: Any) -> bool:
    """Whether `node`'s output is quantized: its annotation has an output spec (its own or shared), or it is a
    layout/shape op that PT2E later gives its input's quantization (`propagate_annotation`) with an int8 input."""
    from litert_torch.quantize.pt2e_quantizer_utils import _is_share_obs_or_fq_op

    annotation = getattr(node, "meta", {}).get("quantization_annotation")
    if annotation is not None and annotation._annotated:
        return annotation.output_qspec is not None
    shares = getattr(node, "op", None) == "call_function" and _is_share_obs_or_fq_op(node.target)
    return shares and _is_int8(node.args[0])


def _name(node: Any) -> str:
    return getattr(node.target, "__name__", str(node.target)).removeprefix("aten.")

"""The accuracy-aware `int8-mixed` candidate of the full-INT8 LiteRT targets (tflite-cpu, ethos-u55-128,
ethos-u65-256): their litert-torch PT2E `int8` lowering with named layers left in float32.

Layers are named by their module path in the PyTorch source ("conv3", "encoder.layer.0.output.dense"):
litert-torch quantizes the PyTorch module, not the ONNX model, and a module path is what the user wrote. The
layers offered are the modules with weights the PT2E quantizer rounds to int8 (convolutions, linear layers),
read from the prepared ONNX model's `namespace` metadata, which the dynamo exporter writes on every node, or,
where there is none (a TorchScript source goes through the TorchScript exporter), from the weights' names
("conv3.weight"), which are parameter paths in both exporters.
The compiler's search (edgeml/compiler/accuracy_aware.py) ranks them and picks the fewest to keep, then swaps
them for cheaper ones (fewer weights: `WeightedModule.weights`) where those meet the budget too.

On Ethos-U a float layer cannot run on the NPU: Vela places it, and the ops around it that stay float, on
the Cortex-M CPU. The mix is then a trade the report shows (vela_report.json names every CPU operator), and
the Ethos-U plan refuses it together with `require_full_offload`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, NamedTuple

from edgeml.compiler.build_candidate import Built
from edgeml.compiler.lowerings.compile_with_vela import CompileWithVela
from edgeml.compiler.lowerings.convert_to_tflite_int8 import ConvertToTfliteInt8
from edgeml.compiler.plan import CandidatePlan
from edgeml.compiler.quantized_layers import QuantizedLayer

__all__ = ["MIXED_BASE", "WeightedModule", "mixed_layers", "mixed_plan", "weighted_modules"]

MIXED_BASE = "int8"  # the candidate a mix starts from: litert-torch PT2E full INT8
_WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})  # what PT2E's conv/linear patterns round


class WeightedModule(NamedTuple):
    path: str  # e.g. "blocks.0.fc"
    op: str  # the ONNX op of its first weighted node
    output: str  # … and that node's output tensor
    weights: int  # weight elements of its weighted nodes (biases not counted)


def mixed_plan(base: CandidatePlan, keep_float: tuple[str, ...]) -> CandidatePlan:
    """The `int8` plan with the submodules `keep_float` (module paths in the PyTorch source) left in float32."""
    lowering = base.lowering
    if not isinstance(lowering, ConvertToTfliteInt8 | CompileWithVela):
        raise TypeError(f"{MIXED_BASE} is not a litert-torch PT2E lowering: {lowering!r}")
    return replace(base, lowering=type(lowering)(replace(lowering.config, keep_float=tuple(keep_float))))


def mixed_layers(base: Built, prepared: bytes) -> list[QuantizedLayer]:
    """The modules whose weights the INT8 model rounds, named by path, in graph order."""
    import onnx

    return [
        QuantizedLayer(
            m.path, m.op, m.output, int8=True, has_weights=True, own_scale=True, int8_range=None, weights=m.weights
        )
        for m in weighted_modules(onnx.load_model_from_string(prepared))
    ]


def weighted_modules(model: Any) -> list[WeightedModule]:
    """Each module whose convolution or matrix product has constant weights, once per module, in graph order."""
    constants = {i.name: math.prod(i.dims) for i in model.graph.initializer}
    constants |= {n.output[0]: _constant_elements(n) for n in model.graph.node if n.op_type == "Constant"}
    found: dict[str, WeightedModule] = {}
    for node in model.graph.node:
        if node.op_type not in _WEIGHTED_OPS or not any(i in constants for i in node.input[1:]):
            continue
        path = _module_path(node) or _weight_owner(node, constants)
        if not path:
            continue
        weights = constants.get(node.input[1], 0)  # input 2, where there is one, is the bias
        if path in found:  # a module with several weighted nodes: one layer, all its weights
            found[path] = found[path]._replace(weights=found[path].weights + weights)
        else:
            found[path] = WeightedModule(path, node.op_type, node.output[0], weights)
    return list(found.values())


def _constant_elements(node: Any) -> int:
    value = next((a.t for a in node.attribute if a.name == "value"), None)
    return math.prod(value.dims) if value is not None else 1


def _module_path(node: Any) -> str:
    """The innermost module in the node's namespace, e.g. ": pkg.M/blocks.0: pkg.B/blocks.0.fc: …Linear/linear:
    aten.linear.default" → "blocks.0.fc"; "" for an op of the root module."""
    namespace = next((p.value for p in node.metadata_props if p.key == "namespace"), "")
    modules = [seg.split(": ", 1)[0] for seg in namespace.split("/") if ": aten." not in seg and ": " in seg]
    return modules[-1] if modules else ""


def _weight_owner(node: Any, constants: dict[str, int]) -> str:
    """ "conv3" for a node reading the initializer "conv3.weight"; "" where no weight is named by a path."""
    weight = next((i for i in node.input[1:] if i in constants and i.endswith(".weight")), "")
    return weight.removesuffix(".weight")

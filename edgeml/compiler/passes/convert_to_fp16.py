"""Float32 ONNX → FP16 ONNX: weights and activations in float16, graph inputs and outputs kept float32.

ONNX Runtime's own converter (`onnxruntime.transformers.float16`) does the rewrite: it stores float
initializers as float16 and inserts a Cast at every boundary between FP16 and FP32 nodes, and at the graph
inputs and outputs (keep_io_types), so callers keep feeding and reading float32.

Kept in FP32: the converter's own block list (ML-domain ops, TopK, NonMaxSuppression, RoiAlign, Range,
CumSum, Min, Max, Upsample: no FP16 kernels, or indices and coordinates that FP16 rounds) plus `keep_ops`.
The target's default `keep_ops` are the ops whose result leaves FP16's range (max 65504, smallest positive
6e-8) on ordinary inputs: Exp overflows above 11.1; Log of anything below 6e-8 is -inf; Pow(x, 2) overflows
once |x| > 256, and the ReduceMean that averages it (a LayerNorm written out as ops) would receive the inf.
Softmax and the fused LayerNormalization stay FP16: ONNX Runtime's CUDA and TensorRT kernels subtract the
max and accumulate in FP32 for FP16 tensors, and keeping them in FP32 would add two Casts per attention.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from edgeml.compiler.passes.base import Pass, PassConfig, PassContext, PassResult, option

__all__ = ["ConvertToFp16", "ConvertToFp16Config"]

_FLOAT16 = 10  # onnx.TensorProto.FLOAT16


@dataclass(frozen=True)
class ConvertToFp16Config(PassConfig):
    keep_ops: tuple[str, ...] = option(
        ("Exp", "Log", "Pow", "ReduceMean"), "op types kept in FP32, besides ONNX Runtime's own block list"
    )
    keep_nodes: tuple[str, ...] = option((), "node names kept in FP32")


def _io_stays_float32(model) -> bool:
    values = [*model.graph.input, *model.graph.output]
    return all(v.type.tensor_type.elem_type != _FLOAT16 for v in values)


class ConvertToFp16(Pass):
    name = "convert-to-fp16"
    Config = ConvertToFp16Config
    tools = ("onnx", "onnxruntime")
    postconditions = (("graph inputs and outputs stay float32 (keep_io_types)", _io_stays_float32),)

    def apply(self, model: bytes, ctx: PassContext) -> PassResult:
        import onnx
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

        blocked = sorted({*DEFAULT_OP_BLOCK_LIST, *self.config.keep_ops})
        converted = convert_float_to_float16(
            onnx.load_model_from_string(model),
            keep_io_types=True,
            op_block_list=blocked,  # NOTE: a list replaces the converter's default, so it is the union
            node_block_list=list(self.config.keep_nodes) or None,
        )
        data = converted.SerializeToString()
        return PassResult(data, changed=data != model, notes=(_note(converted, set(blocked)),))


def _note(model, blocked: set[str]) -> str:
    kept = Counter(n.op_type for n in model.graph.node if n.op_type in blocked)
    casts = sum(n.op_type == "Cast" for n in model.graph.node)
    kept_text = ", ".join(f"{op}×{k}" for op, k in sorted(kept.items())) or "none"
    return f"FP16 with float32 I/O; kept in FP32: {kept_text}; {casts} Cast nodes at FP16/FP32 boundaries"

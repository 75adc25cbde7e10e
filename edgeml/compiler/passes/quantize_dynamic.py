"""Float ONNX → ONNX whose MatMuls run in INT8 with activations quantized at run time.

For MatMul-heavy graphs (transformers) only: on convolutions ONNX Runtime's dynamic path goes through
ConvInteger, which measured 10× slower than FP32 here, so Conv is never in the default op list.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.compiler.passes.base import Pass, PassConfig, PassContext, PassResult, option
from edgeml.compiler.passes.quiet_preprocess_advice import quiet_preprocess_advice

__all__ = ["QuantizeDynamic", "QuantizeDynamicConfig"]


@dataclass(frozen=True)
class QuantizeDynamicConfig(PassConfig):
    weight_type: str = option("int8", "weight integer type: int8 or uint8")
    per_channel: bool = option(
        True, "one weight scale per output channel (MiniLM: cosine 0.964 per tensor, 0.993 per channel)"
    )
    op_types: tuple[str, ...] = option(
        ("MatMul", "Gemm", "Attention", "Gather", "EmbedLayerNormalization"),
        "op types to quantize (Gather: embedding tables, e.g. MiniLM's 45 MiB → 11 MiB)",
    )
    exclude_nodes: tuple[str, ...] = option((), "node names kept in float")


class QuantizeDynamic(Pass):
    name = "quantize-dynamic"
    Config = QuantizeDynamicConfig
    tools = ("onnx", "onnxruntime")

    def apply(self, model: bytes, ctx: PassContext) -> PassResult:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        cfg = self.config
        proto = onnx.load_model_from_string(model)
        exclude = set(cfg.exclude_nodes)
        out = ctx.scratch / "quantized-dynamic.onnx"
        with quiet_preprocess_advice():
            quantize_dynamic(
                proto,
                out,
                op_types_to_quantize=list(cfg.op_types),
                per_channel=cfg.per_channel,
                weight_type={"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[cfg.weight_type],
                nodes_to_exclude=sorted(exclude) or None,
            )
        note = (
            f"dynamic INT8 on {', '.join(cfg.op_types)} ({cfg.weight_type} weights), {len(exclude)} node(s) kept float"
        )
        return PassResult(out.read_bytes(), changed=True, notes=(note,))

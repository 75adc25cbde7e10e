"""ONNX → ONNX with ONNX Runtime's portable graph optimizations applied offline.

Level "basic" only (constant folding, redundant-node elimination, Conv+BatchNorm/Add/Mul fusion): its
output is standard ONNX that any runtime loads. "extended"/"all" rewrite into ORT-only, CPU-specific
ops and layouts, which ORT applies anyway when the device loads the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.compiler.passes.base import Pass, PassConfig, PassContext, PassResult, option

__all__ = ["OptimizeGraph", "OptimizeGraphConfig"]


@dataclass(frozen=True)
class OptimizeGraphConfig(PassConfig):
    level: str = option("basic", "ONNX Runtime offline optimization level: basic or none")


class OptimizeGraph(Pass):
    name = "optimize-graph"
    Config = OptimizeGraphConfig
    tools = ("onnx", "onnxruntime")

    def apply(self, model: bytes, ctx: PassContext) -> PassResult:
        if self.config.level == "none":
            return PassResult(model, changed=False)
        import onnx
        import onnxruntime as ort

        out = ctx.scratch / "optimized.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(out)
        options.log_severity_level = 3
        ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(str(out))
        before = len(onnx.load_model_from_string(model).graph.node)
        # ORT stamps its own producer; keep the bytes stable across ORT patch versions' metadata.
        optimized.producer_name, optimized.producer_version = "edgeml", ""
        _drop_unused_opsets(optimized)
        data = optimized.SerializeToString()
        note = f"{before} → {len(optimized.graph.node)} nodes"
        return PassResult(data, changed=data != model, notes=(note,))


def _drop_unused_opsets(model) -> None:
    """ORT's saved model declares every domain it knows (training, aten, …); keep those the graph uses."""
    used = {n.domain for n in model.graph.node} | {"", "ai.onnx"}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)

"""The gpu-ort pipeline: the cpu-ort preparation, then one pass list per candidate precision: FP32 as is,
FP16 (ONNX Runtime's converter, float32 I/O, overflow-prone ops kept in FP32), and QDQ INT8 as TensorRT
reads it (symmetric signed activations and weights, per-channel weights) where there is calibration data;
`int8-mixed`, the accuracy-aware candidate, keeps the fewest (then cheapest) layers of that INT8 model in
float (as on cpu-ort).

No candidate is lowered: the artifact is the ONNX file. Every candidate is validated on ONNX Runtime's
CPU provider, and the plan's notes say so, because the compile host has no CUDA or TensorRT.
"""

from __future__ import annotations

from typing import Any

from edgeml.compiler.passes.convert_to_fp16 import ConvertToFp16, ConvertToFp16Config
from edgeml.compiler.passes.infer_shapes import InferShapes
from edgeml.compiler.passes.optimize_graph import OptimizeGraph, OptimizeGraphConfig
from edgeml.compiler.passes.quantize_static import QuantizeStatic, QuantizeStaticConfig
from edgeml.compiler.passes.upgrade_opset import UpgradeOpset, UpgradeOpsetConfig
from edgeml.compiler.plan import CandidatePlan, Plan
from edgeml.targets.gpu_ort.recipe import Recipe
from edgeml.targets.graph_kind import graph_kind
from edgeml.targets.ort.qdq_mixed_plan import mixed_layers, mixed_plan

__all__ = ["MIXED_BASE", "VALIDATED_ON", "int8_config", "mixed_layers", "mixed_plan", "plan"]

MIXED_BASE = "int8"  # the candidate an accuracy-aware mix (int8-mixed) starts from

VALIDATED_ON = "validated on CPUExecutionProvider; CUDA/TensorRT not present at compile time"


def plan(model: Any, recipe: Recipe) -> Plan:
    prepare = [
        UpgradeOpset(UpgradeOpsetConfig(min_opset=13)),  # NOTE: per-channel QDQ needs opset ≥ 13
        OptimizeGraph(OptimizeGraphConfig(level=recipe.optimization)),
        InferShapes(),  # NOTE: after optimization, so the quantizer and the FP16 converter see the final graph
    ]
    wanted = ("fp32", "fp16", "int8") if recipe.precision == "auto" else (recipe.precision,)
    if recipe.precision == "int8-mixed":
        wanted = ("int8",)  # NOTE: the mix is searched from the all-INT8 candidate
    if recipe.provider == "cuda" and recipe.precision == "auto":
        # NOTE: the CUDA provider runs QDQ models as dequantize + float kernels: INT8 would only cost time
        wanted = ("fp32", "fp16")
    candidates: dict[str, CandidatePlan] = {}
    notes = [f"graph kind: {graph_kind(model)}", VALIDATED_ON]
    if "fp32" in wanted:
        candidates["fp32"] = CandidatePlan()
    if "fp16" in wanted:
        candidates["fp16"] = CandidatePlan([ConvertToFp16(ConvertToFp16Config(keep_ops=recipe.fp16_keep_ops))])
    if "int8" in wanted:
        candidates["int8"] = CandidatePlan([QuantizeStatic(int8_config(recipe))])
    return Plan(prepare, candidates, tuple(notes))


def int8_config(recipe: Recipe) -> QuantizeStaticConfig:
    """TensorRT's explicit quantization takes zero point 0 only: int8 activations make QuantizeStatic
    symmetric on both sides. Only the compute-heavy ops get QDQ (quantized Add/Mul carrying an attention
    mask collapsed MiniLM, see PITFALLS); TensorRT fuses the float elementwise ops around them."""
    return QuantizeStaticConfig(
        activation_type="int8",
        weight_type="int8",
        per_channel=True,
        reduce_range=False,  # NOTE: 7-bit weights are an x86-without-VNNI workaround, not a GPU one
        calibrate_method=recipe.calibrate_method,
        op_types=tuple(recipe.int8_op_types),
    )

"""Every option of the gpu-ort target: type, one-line help, allowed values. Defaults live in target.toml."""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.option import option
from edgeml.targets.recipe import objective_option, search_budget_option

__all__ = ["Recipe"]


@dataclass(frozen=True)
class Recipe:
    precision: str = option(
        "auto",
        "auto measures every fitting candidate and ships the best passing one; int8-mixed keeps the fewest (then "
        "cheapest) layers of the INT8 model in float that meet the budget",
        ("auto", "fp32", "fp16", "int8", "int8-mixed"),
    )
    provider: str = option(
        "tensorrt",
        "the device's execution provider: INT8 QDQ pays only under TensorRT, so cuda drops it",
        ("tensorrt", "cuda"),
    )
    fp16_keep_ops: tuple[str, ...] = option(
        ("Exp", "Log", "Pow", "ReduceMean"),
        "op types kept in FP32 by the FP16 candidate (added to ONNX Runtime's own block list)",
    )
    int8_op_types: tuple[str, ...] = option(
        ("Conv", "ConvTranspose", "Gemm", "MatMul"), "op types the INT8 candidate quantizes (QDQ); the rest stay float"
    )
    calibrate_method: str = option("minmax", "activation range estimator", ("minmax", "entropy", "percentile"))
    optimization: str = option("basic", "offline graph optimization level", ("basic", "none"))
    min_speedup: float = option(
        0.0, "a reduced-precision candidate ships only if this much faster than FP32 (p50, CPU)"
    )
    search_budget_s: float = search_budget_option()
    objective: str = objective_option("size")

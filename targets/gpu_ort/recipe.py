"""Every option of the gpu-ort target: type, one-line help, allowed values. Defaults live in target.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Recipe"]


def _opt(default, help: str, choices: tuple = ()):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Recipe:
    precision: str = _opt(
        "auto", "auto measures every fitting candidate and ships the best passing one", ("auto", "fp32", "fp16", "int8")
    )
    provider: str = _opt(
        "tensorrt",
        "the device's execution provider: INT8 QDQ pays only under TensorRT, so cuda drops it",
        ("tensorrt", "cuda"),
    )
    fp16_keep_ops: tuple[str, ...] = _opt(
        ("Exp", "Log", "Pow", "ReduceMean"),
        "op types kept in FP32 by the FP16 candidate (added to ONNX Runtime's own block list)",
    )
    int8_op_types: tuple[str, ...] = _opt(
        ("Conv", "ConvTranspose", "Gemm", "MatMul"), "op types the INT8 candidate quantizes (QDQ); the rest stay float"
    )
    calibrate_method: str = _opt("minmax", "activation range estimator", ("minmax", "entropy", "percentile"))
    optimization: str = _opt("basic", "offline graph optimization level", ("basic", "none"))
    min_speedup: float = _opt(0.0, "a reduced-precision candidate ships only if this much faster than FP32 (p50, CPU)")
    objective: str = _opt("size", "among passing candidates prefer the fastest or the smallest", ("latency", "size"))

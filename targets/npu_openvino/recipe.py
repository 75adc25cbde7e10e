"""Every option of the npu-openvino target: type, one-line help, allowed values. Defaults live in target.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Recipe"]


def _opt(default, help: str, choices: tuple = ()):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Recipe:
    precision: str = _opt(
        "auto", "auto measures every fitting candidate and ships the best passing one", ("auto", "fp16", "int8")
    )
    shape: str = _opt(
        "",
        "static input shapes for the NPU, e.g. input:1x1x8x8 (several: ids:1x32,mask:1x32); '': the model's own",
    )
    nncf_preset: str = _opt(
        "auto",
        "NNCF INT8 activations: performance (symmetric), mixed (asymmetric); auto: mixed for transformers",
        ("auto", "performance", "mixed"),
    )
    fast_bias_correction: bool = _opt(True, "NNCF's fast bias correction after range setting")
    min_speedup: float = _opt(0.0, "a quantized candidate ships only if this much faster than float (p50, CPU plugin)")
    objective: str = _opt("size", "among passing candidates prefer the fastest or the smallest", ("latency", "size"))

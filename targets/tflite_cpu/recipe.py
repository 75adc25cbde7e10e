"""Every option of the tflite-cpu target: type, one-line help, allowed values. Defaults live in target.toml."""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.option import option
from edgeml.targets.recipe import objective_option, search_budget_option

__all__ = ["Recipe"]


@dataclass(frozen=True)
class Recipe:
    precision: str = option(
        "auto",
        "auto builds fp32, int8-dynamic (ai-edge-quantizer dynamic_wi8_afp32: int8 weights, float activations) "
        "and int8 (full INT8: weights, activations, inputs, outputs) and ships the fastest within budget; "
        "int8-mixed: full INT8 with the fewest (then cheapest) layers kept in float32 that meet the accuracy budget",
        ("auto", "fp32", "int8-dynamic", "int8", "int8-mixed"),
    )
    per_channel: bool = option(True, "full INT8: per-output-channel weight scales (per-tensor when false)")
    min_speedup: float = option(1.05, "a quantized candidate ships only if this much faster than the fp32 TFLite (p50)")
    search_budget_s: float = search_budget_option()
    objective: str = objective_option("latency")

"""Every option of the cpu-openvino target: type, one-line help, allowed values. Defaults live in target.toml."""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.option import option
from edgeml.targets.recipe import objective_option, search_budget_option

__all__ = ["Recipe"]


@dataclass(frozen=True)
class Recipe:
    precision: str = option(
        "auto",
        "auto measures every fitting candidate and ships the best passing one; int8-mixed: NNCF INT8 with the "
        "fewest (then cheapest) layers kept in float that meet the accuracy budget",
        ("auto", "fp32", "int8", "int8-mixed"),
    )
    nncf_preset: str = option(
        "auto",
        "NNCF INT8 activations: performance (symmetric), mixed (asymmetric); auto: mixed for transformers",
        ("auto", "performance", "mixed"),
    )
    fast_bias_correction: bool = option(True, "NNCF's fast bias correction after range setting")
    min_speedup: float = option(1.05, "a quantized candidate ships only if this much faster than float (p50)")
    search_budget_s: float = search_budget_option()
    objective: str = objective_option("latency")

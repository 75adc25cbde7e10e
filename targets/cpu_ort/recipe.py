"""Every option of the cpu-ort target: type, one-line help, allowed values. Defaults live in target.toml."""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.option import option
from edgeml.targets.recipe import objective_option, search_budget_option

__all__ = ["Recipe"]


@dataclass(frozen=True)
class Recipe:
    precision: str = option(
        "auto",
        "auto measures every fitting candidate and ships the best passing one; int8-mixed: INT8 (static; "
        "dynamic on transformers) with the fewest (then cheapest) layers kept in float that meet the accuracy budget",
        ("auto", "fp32", "int8-static", "int8-mixed", "int8-dynamic"),
    )
    arch: str = option(
        "auto",
        "device CPU architecture the integer types are chosen for (auto: this host)",
        ("auto", "x86_64", "arm64"),
    )
    activation_type: str = option(
        "auto", "static INT8 activations (auto: uint8 on x86-64, int8 on Arm)", ("auto", "uint8", "int8")
    )
    weight_type: str = option("int8", "INT8 weight type", ("int8", "uint8"))
    per_channel: bool = option(True, "per-output-channel weight scales for static INT8")
    reduce_range: str = option("auto", "7-bit weights (auto: only on x86 without VNNI/AMX)", ("auto", "true", "false"))
    calibrate_method: str = option("minmax", "activation range estimator", ("minmax", "entropy", "percentile"))
    optimization: str = option("basic", "offline graph optimization level", ("basic", "none"))
    min_speedup: float = option(1.05, "a quantized candidate ships only if this much faster than float (p50)")
    search_budget_s: float = search_budget_option()
    objective: str = objective_option("latency")

"""Every option of the npu-openvino target: type, one-line help, allowed values. Defaults live in target.toml."""

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
        "fewest (then cheapest) layers kept in FP16 that meet the accuracy budget",
        ("auto", "fp16", "int8", "int8-mixed"),
    )
    shape: str = option(
        "",
        "static input shapes for the NPU, e.g. input:1x1x8x8 (several: ids:1x32,mask:1x32); '': the model's own, "
        "its dynamic dims taken from the calibration data",
    )
    nncf_preset: str = option(
        "auto",
        "NNCF INT8 activations: performance (symmetric), mixed (asymmetric); auto: mixed for transformers",
        ("auto", "performance", "mixed"),
    )
    fast_bias_correction: bool = option(True, "NNCF's fast bias correction after range setting")
    min_speedup: float = option(
        0.0, "a quantized candidate ships only if this much faster than float (p50, CPU plugin)"
    )
    search_budget_s: float = search_budget_option()
    objective: str = objective_option("size")

"""Every option of the tflite-cpu target: type, one-line help, allowed values. Defaults live in target.toml."""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.targets.recipe import target_option

__all__ = ["Recipe"]


@dataclass(frozen=True)
class Recipe:
    precision: str = target_option(
        "int8", "full INT8 (weights, activations, inputs and outputs): what this target ships", ("int8",)
    )
    per_channel: bool = target_option(True, "per-output-channel weight scales (per-tensor when false)")
    min_speedup: float = target_option(1.0, "a quantized candidate ships only if this much faster than float (p50)")
    objective: str = target_option(
        "latency", "among passing candidates prefer the fastest or the smallest", ("latency", "size")
    )

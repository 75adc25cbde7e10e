"""Every option of the tflite-cpu target: type, one-line help, allowed values. Defaults live in target.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Recipe"]


def _opt(default, help: str, choices: tuple = ()):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Recipe:
    precision: str = _opt(
        "int8", "full INT8 (weights, activations, inputs and outputs): what this target ships", ("int8",)
    )
    per_channel: bool = _opt(True, "per-output-channel weight scales (per-tensor when false)")
    min_speedup: float = _opt(1.0, "a quantized candidate ships only if this much faster than float (p50)")
    objective: str = _opt("latency", "among passing candidates prefer the fastest or the smallest", ("latency", "size"))

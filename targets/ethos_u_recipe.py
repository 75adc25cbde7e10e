"""Every option of the Ethos-U targets (ethos-u55-128, ethos-u65-256): type, one-line help, allowed values.

Shared by both folders (their hardware differs in data, target.toml, not in options); defaults live in
each target.toml. The system configuration and memory mode name sections of the Vela .ini (`config_file`,
Arm's bundled `Arm/vela.ini` by default); `edgeml compile` checks them against that file before Vela runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EthosURecipe"]


def _opt(default, help: str, choices: tuple = ()):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class EthosURecipe:
    precision: str = _opt("int8", "full INT8 (weights, activations, inputs, outputs): all the NPU runs", ("int8",))
    system_config: str = _opt("", "Vela --system-config: a System_Config section of config_file")
    memory_mode: str = _opt("", "Vela --memory-mode: a Memory_Mode section of config_file")
    config_file: str = _opt("Arm/vela.ini", "Vela configuration .ini: a path, or a file bundled with Vela")
    optimise: str = _opt("Performance", "Vela --optimise", ("Performance", "Size"))
    require_full_offload: bool = _opt(False, "fail the compile when any operator falls back to the CPU")
    per_channel: bool = _opt(True, "per-output-channel int8 weight scales (per-tensor when false)")
    min_speedup: float = _opt(1.0, "host speed check vs float; unused: the NPU figure is Vela's estimate")
    objective: str = _opt("latency", "among passing candidates prefer the fastest or the smallest", ("latency", "size"))

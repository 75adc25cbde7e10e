"""Every option of the Ethos-U targets (ethos-u55-128, ethos-u65-256): type, one-line help, allowed values.

Shared by both folders (their hardware differs in data, target.toml, not in options); defaults live in
each target.toml. The system configuration and memory mode name sections of the Vela .ini (`config_file`,
Arm's bundled `Arm/vela.ini` by default); `edgeml compile` checks them against that file before Vela runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.option import option
from edgeml.targets.recipe import objective_option, search_budget_option

__all__ = ["EthosURecipe"]


@dataclass(frozen=True)
class EthosURecipe:
    precision: str = option(
        "int8",
        "int8: full INT8 (weights, activations, inputs, outputs), all the NPU runs; int8-mixed: the fewest (then "
        "cheapest) layers kept in float32 (on the Cortex-M CPU) that meet the accuracy budget",
        ("int8", "int8-mixed"),
    )
    system_config: str = option("", "Vela --system-config: a System_Config section of config_file")
    memory_mode: str = option("", "Vela --memory-mode: a Memory_Mode section of config_file")
    config_file: str = option("Arm/vela.ini", "Vela configuration .ini: a path, or a file bundled with Vela")
    optimise: str = option("Performance", "Vela --optimise", ("Performance", "Size"))
    require_full_offload: bool = option(False, "fail the compile when any operator falls back to the CPU")
    min_npu_share: float = option(
        0.0, "fail the compile when Vela places less than this share of the operators (0–1) on the NPU"
    )
    per_channel: bool = option(True, "per-output-channel int8 weight scales (per-tensor when false)")
    min_speedup: float = option(1.0, "host speed check vs float; unused: the NPU figure is Vela's estimate")
    search_budget_s: float = search_budget_option()
    objective: str = objective_option("latency")

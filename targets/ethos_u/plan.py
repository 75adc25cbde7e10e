"""The Ethos-U pipeline, shared by the Ethos-U targets: no ONNX passes; one candidate, full INT8 from the
PyTorch source, compiled by Vela for the target's accelerator. Pinning `int8-mixed` plans that candidate as
the start of the compiler's accuracy-aware search (../litert/tflite_mixed_plan.py): layers it keeps in float32 run
on the Cortex-M CPU.

Before any work: the toolchain is installed, the Vela system configuration and memory mode exist, and, with
`require_full_offload`, the pre-flight placement puts every operator on the NPU (Vela's own placement is
checked again after it compiles). `min_npu_share` is checked on Vela's placement, after it compiles.
"""

from __future__ import annotations

from typing import Any

from edgeml.compiler.lowerings.compile_with_vela import CompileWithVela, CompileWithVelaConfig
from edgeml.compiler.lowerings.run_vela import vela_configs
from edgeml.compiler.plan import CandidatePlan, Plan
from edgeml.errors import TargetError
from edgeml.targets.ethos_u.placement import predict_placement
from edgeml.targets.ethos_u.recipe import EthosURecipe
from edgeml.targets.require_modules import require_modules
from edgeml.targets.target_spec import TargetSpec

__all__ = ["ethos_u_plan"]

_MIXED_NOTE = (
    "int8-mixed: layers the search keeps in float32 run on the Cortex-M CPU (vela_report.json names them); "
    "Vela's cycle estimate covers the NPU part only, the verdict adds edgeml's estimate of the CPU part"
)


def ethos_u_plan(model: Any, recipe: EthosURecipe, spec: TargetSpec) -> Plan:
    require_modules(("litert_torch", "ai_edge_litert", "ethosu.vela"), "ethos-u", f"target {spec.id}")
    _check_vela_config(recipe, spec.id)
    _check_offload_options(recipe, spec.id)
    placement = predict_placement(model, spec.device)
    if recipe.require_full_offload and placement.cpu:
        raise TargetError(
            f"require_full_offload: {placement.describe()}",
            "replace those operators with ones the NPU runs, or drop require_full_offload to ship with CPU fallback",
        )
    lowering = CompileWithVela(
        CompileWithVelaConfig(
            accelerator=spec.device,
            system_config=recipe.system_config,
            memory_mode=recipe.memory_mode,
            config_file=recipe.config_file,
            optimise=recipe.optimise,
            require_full_offload=recipe.require_full_offload,
            min_npu_share=recipe.min_npu_share,
            per_channel=recipe.per_channel,
        )
    )
    notes = (
        *((_MIXED_NOTE,) if recipe.precision == "int8-mixed" else ()),
        placement.describe(),
        "host accuracy, fidelity and latency are of reference_int8.tflite (the INT8 model Vela compiled, run by "
        "LiteRT); the device figures are Vela's estimates for the NPU plus edgeml's stated estimate for any "
        "CPU fallback, in vela_report.json",
    )
    return Plan([], {"int8": CandidatePlan([], lowering)}, notes)


def _check_offload_options(recipe: EthosURecipe, target_id: str) -> None:
    if not 0.0 <= recipe.min_npu_share <= 1.0:
        raise TargetError(
            f"target {target_id} option min_npu_share={recipe.min_npu_share:g} is not a share between 0 and 1",
            "e.g. -O min_npu_share=0.9 (at least 90 % of the operators on the NPU)",
        )
    for option, on in (("require_full_offload", recipe.require_full_offload), ("min_npu_share", recipe.min_npu_share)):
        if recipe.precision == "int8-mixed" and on:
            raise TargetError(
                f"target {target_id}: int8-mixed keeps layers in float32, which only the CPU runs, and {option} "
                "refuses a build with operators on the CPU",
                f"pick one: -O precision=int8 (every operator int8) or drop {option}",
            )


def _check_vela_config(recipe: EthosURecipe, target_id: str) -> None:
    systems, modes = vela_configs(recipe.config_file)
    for option, value, known in (
        ("system_config", recipe.system_config, systems),
        ("memory_mode", recipe.memory_mode, modes),
    ):
        if value not in known:
            raise TargetError(
                f"target {target_id} option {option}={value!r} is not defined in Vela's {recipe.config_file}",
                f"one of: {', '.join(sorted(known))}",
            )

"""Hardware targets: one folder each (target.toml + check + lower), registered in the table below."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgeml.errors import TargetError

__all__ = ["TARGETS", "default_target_id", "load_target"]

# target id → module. Every module exposes SPEC, Recipe, check(...) and plan(...) (see cpu_ort/).
TARGETS: dict[str, str] = {
    "cpu-ort": "edgeml.targets.cpu_ort",
    "cpu-openvino": "edgeml.targets.cpu_openvino",
    "npu-openvino": "edgeml.targets.npu_openvino",
    "gpu-ort": "edgeml.targets.gpu_ort",
    "tflite-cpu": "edgeml.targets.tflite_cpu",
    "ethos-u55-128": "edgeml.targets.ethos_u55_128",
    "ethos-u65-256": "edgeml.targets.ethos_u65_256",
}


def default_target_id() -> str:
    """The target for "this host's CPU" when the user names none."""
    return "cpu-ort"


def load_target(target_id: str) -> ModuleType:
    if target_id not in TARGETS:
        raise TargetError(f"unknown target {target_id!r}", f"known targets: {', '.join(TARGETS)} (`edgeml targets`)")
    return importlib.import_module(TARGETS[target_id])

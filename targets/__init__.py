"""Hardware targets: one folder each (target.toml + check + lower + recipe), registered in the table below.

Each folder's `__init__.py` builds its `TARGET`, a typed `Target` (target.py): spec, recipe type, check, plan
and, where it has one, its mixed-precision capability. Helpers a runtime family shares live in a folder of
their own: ort/, openvino/, litert/, ethos_u/.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from edgeml.errors import TargetError

if TYPE_CHECKING:
    from edgeml.targets.target import Target

__all__ = ["TARGETS", "default_target_id", "load_target", "rules_digest"]

# target id → the package whose `TARGET` it is (imported when first loaded: a target imports its toolchain's passes)
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


def load_target(target_id: str) -> Target:
    if target_id not in TARGETS:
        raise TargetError(f"unknown target {target_id!r}", f"known targets: {', '.join(TARGETS)} (`edgeml targets`)")
    return importlib.import_module(TARGETS[target_id]).TARGET


@functools.cache
def rules_digest() -> str:
    """sha256 over the source of every target file (checks, op tables, target.toml): part of the check's cache
    key, so a cached verdict never outlives the rules that gave it."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".toml") and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()

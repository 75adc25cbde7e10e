"""`target.toml` → TargetSpec: what a hardware target is and can do, as data."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # NOTE: tomllib is 3.11+; tomli is the same parser, a core dependency on 3.10
    import tomli as tomllib

__all__ = ["TargetSpec", "load_target_spec"]


@dataclass(frozen=True)
class TargetSpec:
    id: str
    description: str
    runtime: str
    runtime_min_version: str
    device: str
    artifact_format: str
    model_file: str
    precisions: tuple[str, ...]
    static_shapes: bool
    op_domains: tuple[str, ...]
    recipe_defaults: dict[str, Any]
    source_kinds: tuple[str, ...] = ("onnx", "pt2", "torchscript", "factory")  # what the lowering converts from

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "runtime": self.runtime,
            "runtime_min_version": self.runtime_min_version,
            "device": self.device,
            "artifact_format": self.artifact_format,
            "precisions": list(self.precisions),
            "static_shapes": self.static_shapes,
            "source_kinds": list(self.source_kinds),
        }


def load_target_spec(path: Path) -> TargetSpec:
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    return TargetSpec(
        id=raw["id"],
        description=raw["description"],
        runtime=raw["runtime"],
        runtime_min_version=raw["runtime_min_version"],
        device=raw["device"],
        artifact_format=raw["artifact_format"],
        model_file=raw["model_file"],
        precisions=tuple(raw["precisions"]),
        static_shapes=raw.get("static_shapes", False),
        op_domains=tuple(raw.get("op_domains", ["", "ai.onnx"])),
        recipe_defaults=dict(raw.get("recipe", {})),
        source_kinds=tuple(raw.get("source_kinds", ("onnx", "pt2", "torchscript", "factory"))),
    )

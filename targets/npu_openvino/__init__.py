"""npu-openvino: OpenVINO Runtime on the device's NPU, from a static-shape OpenVINO IR (FP16 or NNCF INT8)."""

from __future__ import annotations

from edgeml.targets.npu_openvino.check import check
from edgeml.targets.npu_openvino.lower import plan
from edgeml.targets.npu_openvino.recipe import Recipe
from edgeml.targets.openvino.nncf_mixed_plan import MIXED_BASE, mixed_layers, mixed_plan
from edgeml.targets.target import MixedPrecision, target_from_folder

__all__ = ["TARGET"]

TARGET = target_from_folder(
    __file__, recipe_type=Recipe, check=check, plan=plan,
    mixed=MixedPrecision(MIXED_BASE, mixed_layers, mixed_plan),
)  # fmt: skip

"""A target that converts from PyTorch refuses an ONNX-only source up front, with what to pass instead."""

from __future__ import annotations

from edgeml.errors import TargetError
from edgeml.targets.target_spec import TargetSpec

__all__ = ["check_source_kind"]


def check_source_kind(spec: TargetSpec, kind: str, location: str) -> None:
    if kind in spec.source_kinds:
        return
    raise TargetError(
        f"target {spec.id} converts from PyTorch, and {location} is an ONNX file",
        "pass the PyTorch model instead: a torch.export archive (.pt2), a TorchScript file, or a module:function "
        "factory returning (nn.Module, example_inputs); no ONNX → TFLite converter works with this stack. "
        "For an ONNX-only model, target cpu-ort or cpu-openvino",
    )

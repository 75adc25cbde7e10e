"""The compile's model source → the torch module a PyTorch-based converter (litert-torch) starts from.

.pt2 → the ExportedProgram's module; TorchScript → torch.export through torch's TorchScript converter;
`module:function` → the module it returns. Loading goes through the same `load_torch_source` as intake, so
the converter sees exactly the model that was exported to ONNX and checked. An ONNX file is refused: no
ONNX → TFLite converter installs beside this stack (onnx2tf needs TensorFlow, whose pins downgrade onnx,
onnxruntime and ai-edge-litert), so the PyTorch model is what these targets need.
"""

from __future__ import annotations

from typing import Any

from edgeml.calibration.dataset import Dataset
from edgeml.calibration.example_inputs import torch_examples
from edgeml.compiler.load_torch_source import load_torch_source
from edgeml.errors import ModelIntakeError, TargetError

__all__ = ["torch_module_for"]


def torch_module_for(source: Any, calibration: Dataset | None, needed_for: str) -> Any:
    """`source` is the compile's ModelSource (kind "onnx" | "pt2" | "torchscript" | "factory")."""
    if source is None or source.kind == "onnx":
        where = f"{source.location} is an ONNX file" if source is not None else "no model source was given"
        raise TargetError(
            f"{needed_for} converts from PyTorch, and {where}",
            "pass the PyTorch model instead: a torch.export archive (.pt2), a TorchScript file, or a "
            "module:function factory returning (nn.Module, example_inputs); no ONNX → TFLite converter works "
            "with this stack (onnx2tf needs TensorFlow and downgrades onnx/onnxruntime). For an ONNX-only "
            "model, target cpu-ort or cpu-openvino",
        )
    arrays = (lambda: torch_examples(calibration)) if calibration is not None else None
    model, examples, _ = load_torch_source(source, arrays)
    if source.kind == "pt2":
        return model.module()
    if source.kind == "torchscript":
        return _export_torchscript(model, examples, source.location)
    return model


def _export_torchscript(module: Any, examples: tuple[Any, ...], location: str) -> Any:
    from torch._export.converter import TS2EPConverter

    try:
        return TS2EPConverter(module, examples).convert().module()
    except Exception as exc:
        raise ModelIntakeError(
            f"torch cannot turn the TorchScript in {location} into a torch.export program: {type(exc).__name__}: "
            f"{str(exc)[:300]}",
            "save the model with torch.export.save (.pt2), or pass a module:function factory",
        ) from exc

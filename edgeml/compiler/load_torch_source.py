"""A PyTorch model source (.pt2, TorchScript, `module:function`) → the loaded model, example inputs, input names.

Intake exports it to ONNX; lowerings that convert from PyTorch directly (litert-torch → TFLite) load it here
too, so both see the same model, the same examples and the same errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeml.errors import ModelIntakeError
from edgeml.importing import import_callable

if TYPE_CHECKING:
    from edgeml.compiler.intake import ModelSource

__all__ = ["load_torch_source"]


def load_torch_source(
    source: ModelSource, example_arrays: Callable[[], dict[str, np.ndarray]] | None = None
) -> tuple[Any, tuple[Any, ...], list[str]]:
    """(model, example inputs, input names); the model is an ExportedProgram for .pt2, else an nn.Module."""
    try:
        import torch
    except ImportError as exc:
        raise ModelIntakeError("PyTorch sources need torch", "pip install torch==2.13.0 'edgeml[compile]'") from exc

    if source.kind == "factory":
        return _from_factory(source.location)
    if source.kind == "pt2":
        try:
            program = torch.export.load(source.location)
        except Exception as exc:
            raise ModelIntakeError(f"cannot load {source.location} with torch.export.load: {exc}") from exc
        args = (program.example_inputs or ((), {}))[0]
        if not args:
            raise ModelIntakeError(f"{source.location} carries no example inputs", "re-save it with torch.export.save")
        names = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
        return program, tuple(args), names
    try:
        module = torch.jit.load(source.location, map_location="cpu").eval()
    except Exception as exc:
        raise ModelIntakeError(f"cannot load {source.location} as TorchScript: {exc}") from exc
    if example_arrays is None:
        raise ModelIntakeError(
            "a TorchScript file does not record its input shapes",
            "pass --calib with an .npz whose keys are the forward() inputs, in order",
        )
    arrays = example_arrays()
    return module, tuple(torch.from_numpy(a[:1]) for a in arrays.values()), list(arrays)


def _from_factory(spec: str) -> tuple[Any, tuple[Any, ...], list[str]]:
    import torch

    from edgeml.compiler.passes.export_onnx import forward_input_names

    fn = import_callable(spec, ModelIntakeError)
    try:
        result = fn()
    except Exception as exc:
        raise ModelIntakeError(f"factory {spec} raised {type(exc).__name__}: {exc}") from exc
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.nn.Module)):
        raise ModelIntakeError(f"factory {spec} must return (nn.Module, example_inputs), got {type(result).__name__}")
    module, examples = result
    examples = tuple(examples) if isinstance(examples, (tuple, list)) else (examples,)
    return module.eval(), examples, forward_input_names(module, len(examples))

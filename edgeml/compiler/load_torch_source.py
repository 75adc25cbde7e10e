"""A PyTorch model source (.pt2, TorchScript, `module:function`) → the loaded model, example inputs, input names.

Intake exports it to ONNX; lowerings that convert from PyTorch directly (litert-torch → TFLite) load it here
too, so both see the same model, the same examples and the same errors. A TorchScript `forward` takes its
arguments by the types its schema declares: a tensor from the data's array of that name (one sample), an
`int`/`float`/`bool` (a sample rate) from a constant: a scalar in the data or `--input NAME:constant=V`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeml.errors import ModelIntakeError
from edgeml.importing import import_callable

if TYPE_CHECKING:
    from edgeml.calibration.example_inputs import Example
    from edgeml.compiler.intake import ModelSource

__all__ = ["load_torch_source"]

_SCALARS = {"int": int, "float": float, "bool": bool}


def load_torch_source(
    source: ModelSource, example_arrays: Callable[[], dict[str, Example]] | None = None
) -> tuple[Any, tuple[Any, ...], list[str]]:
    """(model, example inputs, input names); the model is an ExportedProgram for .pt2, else an nn.Module."""
    try:
        import torch
    except ImportError as exc:
        raise ModelIntakeError("PyTorch sources need torch", "pip install torch==2.13.0 'edgeml[compile]'") from exc

    if source.kind == "factory":
        return _from_factory(source.location, example_arrays)
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
    examples, names = _scripted_arguments(module, example_arrays(), source.location)
    return module, examples, names


def _scripted_arguments(module: Any, given: dict[str, Example], location: str) -> tuple[tuple[Any, ...], list[str]]:
    """forward()'s arguments in order, each converted to the type its schema declares."""
    import torch

    try:
        params = [(a.name, str(a.type), a.has_default_value()) for a in module.forward.schema.arguments[1:]]
    except (AttributeError, RuntimeError):
        params = [(name, "Tensor", False) for name in given]
    by_name = {name: given[name] for name, _, _ in params if name in given}
    if not by_name:  # NOTE: the data's keys name nothing in forward(): take them in order, as before
        by_name = dict(zip((p[0] for p in params), given.values(), strict=False))
    values, names = [], []
    for name, kind, has_default in params:
        if name not in by_name:
            if has_default:
                break
            raise ModelIntakeError(
                f"{location}: forward() takes {name}: {kind}, and the data has no {name!r} "
                f"(it has: {', '.join(given) or 'nothing'})",
                f"add {name} to the .npz (a scalar for an {kind}: numpy.int64(16000)), or pass "
                f"--input {name}:constant=VALUE"
                if kind in _SCALARS
                else f"add an array named {name!r} to the .npz, one sample per index of its batch axis",
            )
        value = by_name[name].value
        if kind in _SCALARS:
            if value.size != 1:
                raise ModelIntakeError(
                    f"{location}: forward() takes {name}: {kind}, a single number; the data gives an array "
                    f"of shape {list(value.shape)}",
                    f"store {name} as one value, or pass --input {name}:constant=VALUE",
                )
            values.append(_SCALARS[kind](value.reshape(()).item()))
        elif value.dtype.kind in "biuf":
            values.append(torch.from_numpy(np.ascontiguousarray(value)))
        else:
            raise ModelIntakeError(
                f"{location}: forward() takes {name}: {kind}; the data gives a {value.dtype} array, not numbers",
                f"store {name} as a numeric array",
            )
        names.append(name)
    return tuple(values), names


def _from_factory(spec: str, example_arrays=None) -> tuple[Any, tuple[Any, ...], list[str]]:
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
    examples += _missing_constants(module, len(examples), example_arrays)
    return module.eval(), examples, forward_input_names(module, len(examples))


def _missing_constants(module: Any, given: int, example_arrays) -> tuple[Any, ...]:
    """forward() arguments the factory's examples leave out (an `sr: int`), from the constants the data or
    `--input NAME:constant=V` give; none when nothing is missing or nothing matches."""
    import inspect

    import torch

    try:
        params = list(inspect.signature(module.forward).parameters.values())[given:]
    except (TypeError, ValueError):
        return ()
    missing = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    constants = example_arrays() if missing and example_arrays is not None else {}
    out: list[Any] = []
    for p in missing:
        if p.name not in constants or not constants[p.name].is_constant:
            break
        value = constants[p.name].value
        scalar = _SCALARS.get(getattr(p.annotation, "__name__", str(p.annotation)))
        out.append(scalar(value.reshape(()).item()) if scalar and value.size == 1 else torch.from_numpy(value.copy()))
    return tuple(out)

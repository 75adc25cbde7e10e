"""PyTorch module / ExportedProgram / TorchScript → ONNX bytes.

The dynamo exporter first; where it fails, the legacy TorchScript exporter, and the result says which
one produced the graph (it lands in the manifest's provenance). Weights are embedded (no external data
file) and the batch dimension is exported as dynamic, named "batch", unless the model forbids it: on each
tensor's own batch axis (0 unless the data says otherwise), never on a tensor that has no such axis (a
scalar), never on a non-tensor argument (an `int sr`, which the graph then holds as a constant).
"""

from __future__ import annotations

import inspect
import io
import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from edgeml.errors import ModelIntakeError

__all__ = ["default_output_names", "export_to_onnx", "forward_input_names"]

log = logging.getLogger(__name__)
OPSET = 18


def forward_input_names(module: Any, count: int) -> list[str]:
    """Names of forward()'s positional parameters, else input_0, input_1, …"""
    try:
        params = [
            p
            for p in inspect.signature(module.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError, AttributeError):
        params = []
    names = [p.name for p in params][:count]
    return names if len(names) == count else [f"input_{i}" for i in range(count)]


def default_output_names(model: Any, example_inputs: Sequence[Any]) -> list[str]:
    """`output` for one output, `output_0`, `output_1`, … for several: unique, never an internal value's name."""
    import torch

    runnable = model.module() if isinstance(model, torch.export.ExportedProgram) else model
    with torch.no_grad():
        result = runnable(*example_inputs)
    count = len(result) if isinstance(result, (tuple, list)) else 1
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def export_to_onnx(
    model: Any,
    example_inputs: Sequence[Any],
    input_names: Sequence[str],
    output_names: Sequence[str] | None = None,
    dynamic_batch: bool = True,
    batch_axes: Mapping[str, int | None] | None = None,
) -> tuple[bytes, str]:
    """Return (ONNX bytes, exporter used: "dynamo" or "torchscript"); `batch_axes` (default 0) per input."""
    import torch

    args = tuple(example_inputs)
    tensors = [name for name, a in zip(input_names, args, strict=False) if isinstance(a, torch.Tensor)]
    axes = _dynamic_axes(tensors, args, batch_axes or {}) if dynamic_batch else None
    is_program = isinstance(model, torch.export.ExportedProgram)
    is_script = isinstance(model, torch.jit.ScriptModule)
    errors = []
    for dynamo in (True, False):
        if (not dynamo and is_program) or (dynamo and is_script):
            continue  # NOTE: the legacy exporter cannot read an ExportedProgram; torch.export cannot trace TorchScript
        # NOTE: TorchScript keeps an `int sr` argument as a graph input (named here); a traced module bakes it in
        names = list(input_names) if is_script else tensors
        try:
            return _export(model, args, names, output_names, None if is_program else axes, dynamo), (
                "dynamo" if dynamo else "torchscript"
            )
        except Exception as exc:  # exporters raise many unrelated types; each is reported below
            log.info("%s exporter failed: %s", "dynamo" if dynamo else "torchscript", exc)
            errors.append(f"{'dynamo' if dynamo else 'torchscript'} exporter: {type(exc).__name__}: {_gist(exc)}")
    raise ModelIntakeError(
        "PyTorch → ONNX export failed:\n    " + "\n    ".join(errors),
        "this TorchScript does not export to ONNX (Python-side state or control flow on its arguments): pass "
        "the model's ONNX file if its authors ship one, or a module:function factory returning the network"
        if is_script
        else "export the model to ONNX yourself and pass the .onnx, or simplify the unsupported operation",
    )


def _gist(exc: BaseException) -> str:
    """The exporter's complaint in one line: the first line that is not a bare path or a code excerpt."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:400]


def _dynamic_axes(names: Sequence[str], args: tuple[Any, ...], batch_axes: Mapping[str, int | None]):
    """{name: {axis: "batch"}} for each tensor that has its batch axis; None when no tensor has one."""
    import torch

    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    axes = {}
    for name, tensor in zip(names, tensors, strict=False):
        axis = batch_axes.get(name, 0)
        if axis is not None and tensor.dim() > axis:
            axes[name] = {axis: "batch"}
    return axes or None


def _export(model, args, input_names, output_names, axes, dynamo: bool) -> bytes:
    import torch

    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(
                model,
                args,
                dynamo=True,
                external_data=False,
                input_names=list(input_names),
                output_names=list(output_names) if output_names else None,
                dynamic_axes=axes,
                opset_version=OPSET,
                verbose=False,
            )
            return strip_local_paths(program.model_proto).SerializeToString()
        buf = io.BytesIO()
        torch.onnx.export(
            model,
            args,
            buf,
            dynamo=False,
            input_names=list(input_names),
            output_names=list(output_names) if output_names else None,
            dynamic_axes=axes,
            opset_version=17,
        )
        import onnx

        return strip_local_paths(onnx.load_model_from_string(buf.getvalue())).SerializeToString()


def strip_local_paths(proto: Any) -> Any:
    """Drop the per-node stack traces the exporter records: they hold absolute paths of this machine
    (source and site-packages), which would leak into artifacts and make rebuilds elsewhere differ."""
    nodes = list(proto.graph.node) + [n for f in proto.functions for n in f.node]
    for node in nodes:
        keep = [p for p in node.metadata_props if "stack_trace" not in p.key]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
        node.doc_string = ""
    return proto

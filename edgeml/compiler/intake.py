"""A model source (ONNX, .pt2, TorchScript, `module:function` factory) → checked ONNX bytes + signature.

PyTorch sources are exported once and cached by the source's content, so a re-run does not import torch.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeml.calibration.example_inputs import Example
from edgeml.compiler.content_cache import Blob, ContentCache, cache_key
from edgeml.compiler.load_torch_source import load_torch_source
from edgeml.compiler.progress import Progress
from edgeml.compiler.tool_versions import tool_versions
from edgeml.errors import ModelIntakeError
from edgeml.importing import looks_like_callable_spec
from edgeml.signature import ModelSignature, TensorSpec

__all__ = [
    "IntakeResult",
    "ModelSource",
    "identify_source",
    "load_onnx_model",
    "name_dynamic_dims",
    "onnx_signature",
    "take_in",
]

_TORCHSCRIPT_SUFFIXES = {".pt", ".pth", ".ts", ".torchscript", ".jit"}
EXPORT_VERSION = 1  # bump when the export settings change, to invalidate cached exports


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "onnx" | "pt2" | "torchscript" | "factory"
    location: str
    digest: str
    data: bytes | None = field(default=None, repr=False, compare=False)  # the file's bytes, read once


@dataclass(frozen=True)
class IntakeResult:
    source: ModelSource
    onnx: Blob
    signature: ModelSignature
    exporter: str | None  # None for ONNX sources
    cached: bool


def identify_source(spec: str) -> ModelSource:
    if looks_like_callable_spec(spec):
        return ModelSource("factory", spec, hashlib.sha256(spec.encode()).hexdigest())
    path = Path(spec)
    if not path.exists():
        raise ModelIntakeError(
            f"model {spec} does not exist", "pass an .onnx, .pt2 or TorchScript file, or module:function"
        )
    if path.is_dir():
        raise ModelIntakeError(f"model {spec} is a folder", "pass the model file itself")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    return ModelSource(_kind_of(path, data), str(path), digest, data)


def _kind_of(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if zipfile.is_zipfile(path):
        names = zipfile.ZipFile(path).namelist()
        if suffix == ".pt2" or any("/models/" in n or n.endswith("archive_format") for n in names):
            return "pt2"
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            raise ModelIntakeError(
                f"{path} is a pickled PyTorch object (torch.save of a model or state_dict), not TorchScript",
                "save with torch.jit.save(torch.jit.trace(model, x)), torch.export.save(...), or use a "
                "module:function factory that builds the model",
            )
    if suffix in _TORCHSCRIPT_SUFFIXES | {".pt2"}:
        raise ModelIntakeError(f"{path} is not a readable {suffix} archive")
    raise ModelIntakeError(
        f"{path}: unknown model format {suffix or '(no suffix)'}",
        "edgeml reads .onnx, .pt2 (torch.export), TorchScript (.pt/.ts) and module:function factories",
    )


def load_onnx_model(data: bytes, where: str) -> Any:
    """Parse and check ONNX bytes; ModelIntakeError names the file and the checker's complaint."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelIntakeError(f"{where} is not an ONNX model ({exc})", "pass a file written by onnx.save") from exc
    if not proto.graph.node:
        raise ModelIntakeError(f"{where} is not an ONNX model: it has no graph nodes")
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelIntakeError(
            f"{where} fails the ONNX checker: {first}", "re-export the model, or repair it with onnx tools"
        ) from exc
    return proto


def name_dynamic_dims(proto: Any) -> bool:
    """Give every dynamic input/output dim a name, in place: a negative `dim_value` (paddle2onnx writes -1
    for a dynamic batch) or an empty dim becomes `dim_param` NAME_dimI; True when anything changed."""
    changed = False
    for value in (*proto.graph.input, *proto.graph.output):
        for i, d in enumerate(value.type.tensor_type.shape.dim):
            if (d.HasField("dim_value") and d.dim_value < 0) or not (d.HasField("dim_value") or d.dim_param):
                d.dim_param = f"{value.name}_dim{i}"
                changed = True
    for value in proto.graph.value_info:
        for d in value.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value < 0:
                d.Clear()
                changed = True
    return changed


def onnx_signature(proto: Any) -> ModelSignature:
    from onnx import helper

    initializers = {i.name for i in proto.graph.initializer}

    def spec(value: Any) -> TensorSpec:
        if value.type.WhichOneof("value") != "tensor_type":
            raise ModelIntakeError(
                f"the model's input/output {value.name!r} is a {value.type.WhichOneof('value') or 'typeless value'}, "
                "not a tensor",
                "edgeml feeds and reads tensors: export the model with tensor inputs and outputs",
            )
        t = value.type.tensor_type
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).name
        except (KeyError, TypeError, ValueError):
            raise ModelIntakeError(
                f"the model's input/output {value.name!r} has element type {t.elem_type}, which numpy cannot hold",
                "export it with a float, integer or bool type (cast inside the model)",
            ) from None
        dims = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else (d.dim_param or f"{value.name}_dim{i}")
            for i, d in enumerate(t.shape.dim)
        )
        return TensorSpec(value.name, dtype, dims)

    return ModelSignature(
        tuple(spec(v) for v in proto.graph.input if v.name not in initializers),
        tuple(spec(v) for v in proto.graph.output),
    )


def take_in(
    source: ModelSource,
    cache: ContentCache,
    progress: Progress,
    example_arrays: Callable[[], dict[str, Example]] | None = None,
) -> IntakeResult:
    """Export (cached) and check an identified model; `example_arrays` feeds TorchScript export."""
    spec = source.location
    if source.kind == "onnx":
        proto = load_onnx_model(source.data, source.location)
        blob = Blob.of(proto.SerializeToString()) if name_dynamic_dims(proto) else Blob(source.data, source.digest)
        return IntakeResult(source, blob, onnx_signature(proto), None, cached=False)
    if source.kind == "torchscript" and example_arrays is not None:
        examples = example_arrays()  # NOTE: read once; their shapes and constants shape the export
        example_arrays = lambda: examples  # noqa: E731
    else:
        examples = {}
    key = cache_key(
        source=source.digest,
        kind=source.kind,
        version=EXPORT_VERSION,
        tools=tool_versions(("torch", "onnx", "onnxscript")),
        examples={
            n: [e.value.dtype.name, list(e.value.shape), e.batch_axis, e.value.tolist() if not e.value.ndim else None]
            for n, e in examples.items()
        },
    )
    hit = cache.get_bytes("export", key) if source.kind != "factory" else None
    progress.step("export to ONNX")
    if hit is not None:
        meta = cache.get_json("export", key) or {}
        progress.finished("export to ONNX", "cached")
        proto = load_onnx_model(hit.data, f"cached export of {spec}")
        return IntakeResult(source, hit, onnx_signature(proto), meta.get("exporter"), cached=True)
    data, exporter = _export_torch(source, example_arrays)
    progress.finished("export to ONNX", f"{exporter} exporter")
    proto = load_onnx_model(data, f"ONNX exported from {spec}")
    blob = Blob.of(data)
    if source.kind != "factory":
        cache.put_bytes("export", key, blob, {"exporter": exporter})
    return IntakeResult(source, blob, onnx_signature(proto), exporter, cached=False)


def _export_torch(source: ModelSource, example_arrays) -> tuple[bytes, str]:
    from edgeml.compiler.passes.export_onnx import default_output_names, export_to_onnx

    model, examples, names = load_torch_source(source, example_arrays)
    try:
        outputs = default_output_names(model, examples)
    except Exception as exc:  # the user's model raised on its own example inputs: say which, and with what
        shown = ", ".join(f"{n}={_shown(v)}" for n, v in zip(names, examples, strict=False))
        raise ModelIntakeError(
            f"{source.location} raised {type(exc).__name__} on its example inputs ({shown}): {_first_line(exc)}",
            "give forward() every argument it takes, of the shape it expects: name the arrays in the data after "
            "them, and scalars (a sample rate) as --input NAME:constant=VALUE or a scalar in the .npz",
        ) from exc
    scripted = source.kind == "torchscript" and example_arrays is not None
    axes = {n: e.batch_axis for n, e in example_arrays().items()} if scripted else None
    return export_to_onnx(model, examples, names, outputs, batch_axes=axes)


def _shown(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f"{str(value.dtype).removeprefix('torch.')}{list(shape)}" if shape is not None else repr(value)


def _first_line(exc: BaseException) -> str:
    """The line that says what went wrong: the first, or the last of a TorchScript interpreter traceback."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return (lines[-1] if "Traceback" in str(exc) else lines[0])[:300]

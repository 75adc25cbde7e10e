"""ONNX bytes ↔ OpenVINO: read into an `ov.Model` (optionally reshaped to static shapes, with stable node
names), write an `ov.Model` back out as IR files (`model.xml` + `model.bin`) in FP32 or FP16.

OpenVINO's `save_model` compresses weights to FP16 unless told not to; an FP32 IR says so explicitly.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from edgeml.compiler.lowerings.stable_names import onnx_names, stabilize_names
from edgeml.compiler.optional_dependency import import_optional

__all__ = ["IR_BIN", "IR_XML", "StaticShapes", "ir_files", "read_onnx"]

IR_XML = "model.xml"
IR_BIN = "model.bin"

StaticShapes = tuple[tuple[str, tuple[int, ...]], ...]  # (input name, shape) pairs; empty: keep the model's


def read_onnx(model: bytes, shapes: StaticShapes, needed_for: str) -> Any:
    """ONNX bytes → a new `ov.Model`, reshaped to `shapes`, its auto-generated node names made stable."""
    import onnx

    ov = import_optional("openvino", "compile", needed_for)
    converted = ov.convert_model(io.BytesIO(model))
    if shapes:
        converted.reshape({name: ov.PartialShape(list(dims)) for name, dims in shapes})
    stabilize_names(converted, onnx_names(onnx.load_model_from_string(model)))
    return converted


def ir_files(model: Any, fp16: bool, scratch: Path) -> dict[str, bytes]:
    """An `ov.Model` → {model.xml, model.bin}; FP16 compresses float weights, FP32 keeps them exact."""
    import openvino as ov

    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        xml = Path(folder) / IR_XML
        ov.save_model(model, xml, compress_to_fp16=fp16)
        return {IR_XML: xml.read_bytes(), IR_BIN: xml.with_name(IR_BIN).read_bytes()}

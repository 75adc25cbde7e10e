"""The compile's PyTorch source → a float32 TFLite flatbuffer (float inputs and outputs), via litert-torch.

The same graph as the full-INT8 model (export_for_litert.py), converted without quantization. Both the fp32
candidate and the dynamic-range INT8 candidate start from it, so it is converted once per compile: the
result is kept in the compile's scratch folder, keyed by the ONNX the lowerings receive (the same bytes for
both, exported from the same source).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from edgeml.compiler.lowerings.export_for_litert import export_for_litert
from edgeml.compiler.lowerings.litert_torch_convert import import_litert_torch, litert_torch_convert
from edgeml.compiler.lowerings.torch_module_for import torch_module_for
from edgeml.compiler.passes.base import PassContext
from edgeml.errors import CalibrationError

__all__ = ["TfliteFloat", "float_tflite_for"]


@dataclass(frozen=True)
class TfliteFloat:
    model: bytes
    notes: tuple[str, ...]


def float_tflite_for(onnx: bytes, ctx: PassContext, needed_for: str) -> TfliteFloat:
    memo = ctx.scratch / "float-tflite" / hashlib.sha256(onnx).hexdigest()[:16]
    if (memo / "model.tflite").is_file() and (memo / "notes.json").is_file():
        return TfliteFloat((memo / "model.tflite").read_bytes(), tuple(json.loads((memo / "notes.json").read_text())))
    import_litert_torch(needed_for)  # NOTE: a missing toolchain is named before the source is loaded
    if ctx.calibration is None or not len(ctx.calibration):
        raise CalibrationError(f"{needed_for} exports at batch 1 from one sample input", "pass --calib DATA")
    module = torch_module_for(ctx.source, ctx.calibration, needed_for)
    exported = export_for_litert(module, ctx.signature, ctx.calibration)
    model = litert_torch_convert(exported.graph, exported.sample, ctx.scratch, needed_for)
    notes = ("litert-torch float32 conversion, batch 1, NCHW inputs as in the source", *exported.notes())
    memo.mkdir(parents=True, exist_ok=True)
    (memo / "model.tflite").write_bytes(model)
    (memo / "notes.json").write_text(json.dumps(notes))
    return TfliteFloat(model, notes)

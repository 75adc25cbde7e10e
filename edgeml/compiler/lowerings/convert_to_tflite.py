"""PyTorch source → float32 LiteRT model (`model.tflite`, float inputs and outputs), run by the LiteRT interpreter.

The fp32 candidate of tflite-cpu: what ships when no quantized candidate is within budget and faster, and the
float model the quantized candidates' speed is judged against on the target's own runtime. Like the INT8
lowerings, it converts from the compile's PyTorch source; the ONNX it receives only keys the cache.
"""

from __future__ import annotations

from edgeml.compiler.lowering import Lowered, Lowering
from edgeml.compiler.lowerings.convert_to_tflite_int8 import TFLITE_MODEL, TFLITE_TOOLS
from edgeml.compiler.lowerings.float_tflite_for import float_tflite_for
from edgeml.compiler.lowerings.tflite_io import describe_io
from edgeml.compiler.passes.base import PassContext

__all__ = ["ConvertToTflite"]


class ConvertToTflite(Lowering):
    name = "convert-to-tflite"
    tools = TFLITE_TOOLS

    def apply(self, model: bytes, ctx: PassContext) -> Lowered:
        tflite = float_tflite_for(model, ctx, f"lowering {self.name}")
        return Lowered({TFLITE_MODEL: tflite.model}, TFLITE_MODEL, "litert", (*tflite.notes, describe_io(tflite.model)))

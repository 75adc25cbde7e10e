"""PyTorch source → dynamic-range INT8 LiteRT model (`model.tflite`: int8 weights, float32 activations and I/O).

The float TFLite (float_tflite_for.py, shared with the fp32 candidate) quantized by ai-edge-quantizer's
`dynamic_wi8_afp32` recipe (quantize_tflite_dynamic.py): LiteRT's own default. No calibration data is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.compiler.lowering import Lowered, Lowering
from edgeml.compiler.lowerings.convert_to_tflite_int8 import TFLITE_MODEL, TFLITE_TOOLS
from edgeml.compiler.lowerings.float_tflite_for import float_tflite_for
from edgeml.compiler.lowerings.quantize_tflite_dynamic import quantize_tflite_dynamic
from edgeml.compiler.lowerings.tflite_io import describe_io
from edgeml.compiler.passes.base import PassConfig, PassContext, option

__all__ = ["ConvertToTfliteDynamic", "ConvertToTfliteDynamicConfig"]


@dataclass(frozen=True)
class ConvertToTfliteDynamicConfig(PassConfig):
    recipe: str = option("dynamic_wi8_afp32", "ai-edge-quantizer recipe: int8 weights, float32 activations")


class ConvertToTfliteDynamic(Lowering):
    name = "convert-to-tflite-int8-dynamic"
    Config = ConvertToTfliteDynamicConfig
    tools = (*TFLITE_TOOLS, "ai-edge-quantizer")

    def apply(self, model: bytes, ctx: PassContext) -> Lowered:
        needed_for = f"lowering {self.name}"
        float_model = float_tflite_for(model, ctx, needed_for)
        tflite = quantize_tflite_dynamic(float_model.model, self.config.recipe, needed_for)
        notes = (*float_model.notes, *tflite.notes, describe_io(tflite.model))
        return Lowered({TFLITE_MODEL: tflite.model}, TFLITE_MODEL, "litert", notes)

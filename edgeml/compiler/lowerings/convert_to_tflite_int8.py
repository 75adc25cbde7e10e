"""PyTorch source → full-INT8 LiteRT model (`model.tflite`, int8 inputs and outputs), run by the LiteRT interpreter.

The ONNX bytes this lowering receives are not what it converts: litert-torch converts from PyTorch, so it
loads the compile's own source (ctx.source: .pt2, TorchScript or factory; an ONNX file is refused with the
sources that work). The ONNX still keys the cache: it is exported from that same source. The LiteRT session
adapter quantizes float feeds and dequantizes outputs with each I/O tensor's scale and zero-point, so the
artifact is measured and self-tested against the float source like any other candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.compiler.lowering import Lowered, Lowering
from edgeml.compiler.lowerings.quantize_pt2e_to_tflite import quantize_pt2e_to_tflite
from edgeml.compiler.lowerings.tflite_io import describe_io
from edgeml.compiler.lowerings.torch_module_for import torch_module_for
from edgeml.compiler.passes.base import PassConfig, PassContext, option

__all__ = ["TFLITE_MODEL", "TFLITE_TOOLS", "ConvertToTfliteInt8", "ConvertToTfliteInt8Config"]

TFLITE_MODEL = "model.tflite"
TFLITE_TOOLS = ("onnx", "torch", "torchao", "litert-torch", "ai-edge-litert")


@dataclass(frozen=True)
class ConvertToTfliteInt8Config(PassConfig):
    per_channel: bool = option(True, "per-output-channel int8 weight scales (per-tensor when false)")
    keep_float: tuple[str, ...] = option((), "submodules (paths in the PyTorch source) left in float32: int8-mixed")


class ConvertToTfliteInt8(Lowering):
    name = "convert-to-tflite-int8"
    Config = ConvertToTfliteInt8Config
    uses_calibration = True
    tools = TFLITE_TOOLS

    def apply(self, model: bytes, ctx: PassContext) -> Lowered:
        module = torch_module_for(ctx.source, ctx.calibration, f"lowering {self.name}")
        tflite = quantize_pt2e_to_tflite(
            module,
            ctx.signature,
            ctx.calibration,
            self.config.per_channel,
            ctx.scratch,
            f"lowering {self.name}",
            self.config.keep_float,
        )
        notes = (*tflite.notes, describe_io(tflite.model))
        return Lowered({TFLITE_MODEL: tflite.model}, TFLITE_MODEL, "litert", notes, layers=tflite.layers)

"""ONNX → OpenVINO IR (model.xml + model.bin) in FP32 or FP16, optionally reshaped to static input shapes.

FP32 is written with `compress_to_fp16=False` (OpenVINO's default would quietly halve the weights); FP16
compresses float weights, which the device decompresses or runs natively (NPUs, GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.compiler.lowering import Lowered, Lowering
from edgeml.compiler.lowerings.openvino_ir import IR_XML, StaticShapes, ir_files, read_onnx
from edgeml.compiler.lowerings.validate_ir import validate_ir
from edgeml.compiler.passes.base import PassConfig, PassContext, option
from edgeml.errors import PassContractError

__all__ = ["ConvertToOpenVINO", "ConvertToOpenVINOConfig"]


@dataclass(frozen=True)
class ConvertToOpenVINOConfig(PassConfig):
    precision: str = option("fp32", "weights in the IR: fp32 (exact) or fp16 (compressed)")
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = option(
        (), "(input, shape) pairs the IR is reshaped to; empty keeps the model's shapes"
    )
    device: str = option("CPU", "OpenVINO device the IR is for; a device other than CPU is compiled for once here")

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "fp16"):
            raise PassContractError(f"convert-to-openvino precision {self.precision!r} is not fp32 or fp16")


class ConvertToOpenVINO(Lowering):
    name = "convert-to-openvino"
    Config = ConvertToOpenVINOConfig
    tools = ("onnx", "openvino")

    def apply(self, model: bytes, ctx: PassContext) -> Lowered:
        cfg = self.config
        converted = read_onnx(model, cfg.shapes, f"lowering {self.name}")
        files = ir_files(converted, cfg.precision == "fp16", ctx.scratch)
        notes = (f"OpenVINO IR, {cfg.precision} weights" + _shape_note(cfg.shapes), *validate_ir(converted, cfg.device))
        return Lowered(files, IR_XML, "openvino", notes)


def _shape_note(shapes: StaticShapes) -> str:
    if not shapes:
        return ""
    return ", static shapes " + ", ".join(f"{name}:{'x'.join(map(str, dims))}" for name, dims in shapes)

"""ONNX → OpenVINO model → INT8 OpenVINO IR, post-training quantized by NNCF on the calibration set.

NNCF inserts FakeQuantize nodes with ranges from the calibration samples (all of them: subset_size is the
set's size) and corrects biases. Transformers need `model_type="transformer"`: it keeps the Add/Mul that
carry the attention mask in float, whose quantization collapsed MiniLM to cosine 0.23 elsewhere. NNCF's
own progress bars and log lines are silenced (edgeml reports progress itself).

`ignored` keeps layers in float (the accuracy-aware `int8-mixed` candidate): each is named by its ONNX node,
and every OpenVINO op converted from that node goes into NNCF's `IgnoredScope(names=…)` (onnx_origins.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.lowering import Lowered, Lowering
from edgeml.compiler.lowerings.onnx_origins import OnnxOrigins
from edgeml.compiler.lowerings.openvino_ir import IR_XML, ir_files, read_onnx
from edgeml.compiler.lowerings.stable_names import onnx_names, stabilize_names
from edgeml.compiler.lowerings.validate_ir import validate_ir
from edgeml.compiler.optional_dependency import import_optional
from edgeml.compiler.passes.base import PassConfig, PassContext, option
from edgeml.errors import CalibrationError, PassContractError

__all__ = ["QuantizeWithNNCF", "QuantizeWithNNCFConfig"]

_NOT_LAYERS = {"Constant", "Parameter", "Result"}  # ops NNCF never quantizes: not named in its ignored scope


@dataclass(frozen=True)
class QuantizeWithNNCFConfig(PassConfig):
    preset: str = option("performance", "performance (symmetric activations) or mixed (asymmetric activations)")
    model_type: str = option("", "'transformer' for attention models (mask Add/Mul kept in float); '' otherwise")
    fast_bias_correction: bool = option(True, "NNCF's fast bias correction after range setting")
    fp16_weights: bool = option(False, "compress the weights NNCF leaves in float to FP16 (NPU IRs)")
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = option(
        (), "(input, shape) pairs the IR is reshaped to before quantization"
    )
    device: str = option("CPU", "OpenVINO device the IR is for; a device other than CPU is compiled for once here")
    ignored: tuple[str, ...] = option((), "layers kept in float, by ONNX node name (every op converted from each)")

    def __post_init__(self) -> None:
        if self.preset not in ("performance", "mixed") or self.model_type not in ("", "transformer"):
            raise PassContractError(f"quantize-with-nncf: bad preset {self.preset!r} or model_type {self.model_type!r}")


class QuantizeWithNNCF(Lowering):
    name = "quantize-with-nncf"
    Config = QuantizeWithNNCFConfig
    uses_calibration = True
    tools = ("onnx", "openvino", "nncf")

    def apply(self, model: bytes, ctx: PassContext) -> Lowered:
        import onnx

        cfg = self.config
        if ctx.calibration is None or not len(ctx.calibration):
            raise CalibrationError("NNCF INT8 needs calibration data", "pass --calib, or choose -O precision=fp32")
        nncf = import_optional("nncf", "compile", f"lowering {self.name}")
        float_model = read_onnx(model, cfg.shapes, f"lowering {self.name}")
        proto = onnx.load_model_from_string(model)
        samples = _calibration_feeds(float_model, ctx.calibration)
        with _quiet_nncf():
            quantized = nncf.quantize(
                float_model,
                nncf.Dataset(samples),
                preset=nncf.QuantizationPreset(cfg.preset),
                model_type=nncf.ModelType(cfg.model_type) if cfg.model_type else None,
                subset_size=len(samples),
                fast_bias_correction=cfg.fast_bias_correction,
                target_device=_target_device(nncf, cfg.device),
                ignored_scope=_ignored_scope(nncf, float_model, proto, cfg.ignored) if cfg.ignored else None,
            )
        stabilize_names(quantized, onnx_names(proto))
        files = ir_files(quantized, cfg.fp16_weights, ctx.scratch)
        note = (
            f"NNCF INT8 ({cfg.preset} preset{', transformer' if cfg.model_type else ''}) on "
            f"{len(ctx.calibration)} calibration samples"
            + (f", {len(cfg.ignored)} layer(s) kept in float: {', '.join(cfg.ignored)}" if cfg.ignored else "")
        )
        return Lowered(files, IR_XML, "openvino", (note, *validate_ir(quantized, cfg.device)))


def _calibration_feeds(model: Any, calibration: Dataset) -> list[dict[str, Any]]:
    """One sample per step (or the model's fixed batch), each checked against the model's static input shapes."""
    import openvino as ov

    first = model.inputs[0].get_partial_shape()
    batch = first[0].get_length() if first.rank.is_static and len(first) and first[0].is_static else 1
    feeds = [f for f in calibration.batches(batch) if len(next(iter(f.values()))) == batch]
    for port in model.inputs:
        name, shape = port.get_any_name(), port.get_partial_shape()
        if feeds and name in feeds[0] and not shape.compatible(ov.PartialShape(list(feeds[0][name].shape))):
            raise CalibrationError(
                f"calibration input {name!r} has samples of shape {list(feeds[0][name].shape)}, "
                f"the model takes {shape}",
                "give calibration data of the model's static shape, or a `shape` option that matches the data",
            )
    return feeds


def _ignored_scope(nncf: Any, model: Any, proto: Any, layers: tuple[str, ...]) -> Any:
    """The OpenVINO ops converted from the ONNX nodes `layers`, as an NNCF ignored scope."""
    origins = OnnxOrigins(proto)
    names = {layer: [] for layer in layers}
    for op in model.get_ordered_ops():
        origin = origins.of(op.get_friendly_name())
        if origin in names and op.get_type_name() not in _NOT_LAYERS:
            names[origin].append(op.get_friendly_name())
    missing = [layer for layer, ops in names.items() if not ops]
    if missing:
        raise PassContractError(
            f"quantize-with-nncf: layers {missing} to keep in float match no OpenVINO op of this model",
            "name layers by their ONNX node names, as `edgeml explain` and the compile report list them",
        )
    return nncf.IgnoredScope(names=sorted(n for ops in names.values() for n in ops), validate=True)


def _target_device(nncf: Any, device: str) -> Any:
    """NNCF's hardware config for the device (which ops it quantizes); ANY for a device NNCF does not know."""
    known = {d.value for d in nncf.TargetDevice}
    return nncf.TargetDevice(device) if device in known else nncf.TargetDevice.ANY


@contextlib.contextmanager
def _quiet_nncf() -> Iterator[None]:
    """NNCF draws rich progress bars on the global console and logs on its own stdout handler."""
    import rich

    console, logger = rich.get_console(), logging.getLogger("nncf")
    quiet, level = console.quiet, logger.level
    console.quiet = True
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        console.quiet = quiet
        logger.setLevel(level)

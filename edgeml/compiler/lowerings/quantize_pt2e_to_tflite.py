"""torch module + calibration set → full-INT8 TFLite flatbuffer (int8 inputs and outputs), via litert-torch PT2E.

Steps: export the module as every LiteRT conversion does (export_for_litert.py: named I/O, batch 1, global
means channels-last); insert PT2E observers (symmetric int8 weights, per channel by default; int8
activations from histograms); run every calibration sample; convert; lower to TFLite with litert-torch.
The model keeps the source's NCHW inputs: litert-torch adds the layout change inside the graph (a RESHAPE
when there is one channel, else a TRANSPOSE, both of which Vela places on the Ethos-U NPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.lowerings.export_for_litert import export_for_litert, sample_feed
from edgeml.compiler.lowerings.litert_torch_convert import import_litert_torch, litert_torch_convert
from edgeml.errors import CalibrationError
from edgeml.signature import ModelSignature

__all__ = ["TfliteInt8", "quantize_pt2e_to_tflite"]


@dataclass(frozen=True)
class TfliteInt8:
    model: bytes
    notes: tuple[str, ...]


def quantize_pt2e_to_tflite(
    module: Any,
    signature: ModelSignature,
    calibration: Dataset | None,
    per_channel: bool,
    scratch: Path,
    needed_for: str,
) -> TfliteInt8:
    import_litert_torch(needed_for)  # NOTE: a missing toolchain is named before any work
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    if calibration is None or not len(calibration):
        raise CalibrationError(f"{needed_for} quantizes to full INT8 and needs calibration data", "pass --calib DATA")
    exported = export_for_litert(module, signature, calibration)
    config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=per_channel)
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(config)
    prepared = quantize_pt2e.prepare_pt2e(exported.graph, quantizer)
    with torch.no_grad():
        for i in range(len(calibration)):
            prepared(**sample_feed(calibration, i))
    converted = move_exported_model_to_eval(quantize_pt2e.convert_pt2e(prepared, fold_quantize=False))
    model = litert_torch_convert(converted, exported.sample, scratch, needed_for, quantizer)
    notes = (
        f"litert-torch PT2E full INT8 ({'per-channel' if per_channel else 'per-tensor'} weights), "
        f"calibrated on {len(calibration)} samples, batch 1, NCHW inputs as in the source",
        *exported.notes(),
    )
    return TfliteInt8(model, notes)

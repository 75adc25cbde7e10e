"""torch module + calibration set → full-INT8 TFLite flatbuffer (int8 inputs and outputs), via litert-torch PT2E.

Steps: wrap the module so the TFLite signature carries the source model's input and output names; export
at batch 1 (static shapes: what MCUs and NPUs run); keep global means channels-last (see
keep_mean_channels_last.py); insert PT2E observers (symmetric int8 weights, per channel by default; int8
activations from histograms); run every calibration sample; convert; lower to TFLite with litert-torch.
The model keeps the source's NCHW inputs: litert-torch adds the layout change inside the graph (a RESHAPE
when there is one channel, else a TRANSPOSE, both of which Vela places on the Ethos-U NPU).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.lowerings.keep_mean_channels_last import keep_mean_channels_last
from edgeml.compiler.optional_dependency import import_optional
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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # NOTE: the converter's C++ info lines are not ours to print
    warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)  # torch-internal deprecation
    litert_torch = import_optional("litert_torch", "litert", needed_for)
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    if calibration is None or not len(calibration):
        raise CalibrationError(f"{needed_for} quantizes to full INT8 and needs calibration data", "pass --calib DATA")
    named = _named_io(module, signature.input_names, signature.output_names)
    sample = _feed(calibration, 0)
    graph = torch.export.export(named, (), sample).module()
    means = keep_mean_channels_last(graph)
    if means:  # NOTE: re-export, so the new nodes carry the shape metadata the quantizer annotates by
        graph = torch.export.export(graph, (), sample).module()
    config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=per_channel)
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(config)
    prepared = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(len(calibration)):
            prepared(**_feed(calibration, i))
    converted = move_exported_model_to_eval(quantize_pt2e.convert_pt2e(prepared, fold_quantize=False))
    converted.training = False  # NOTE: an exported module refuses .eval(); litert-torch only reads this flag
    with _quiet_litert_torch():
        edge = litert_torch.convert(converted, sample_kwargs=sample, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    notes = (
        f"litert-torch PT2E full INT8 ({'per-channel' if per_channel else 'per-tensor'} weights), "
        f"calibrated on {len(calibration)} samples, batch 1, NCHW inputs as in the source",
    )
    if means:
        notes += (f"{means} global mean(s) kept channels-last (keepdim + flatten) so no TRANSPOSE precedes them",)
    return TfliteInt8(_flatbuffer(edge, scratch), notes)


def _named_io(module: Any, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> Any:
    """`module` called with named inputs, returning named outputs: the names litert-torch writes into the
    TFLite signature. (Not put in eval mode: the loaders already did, and an exported module refuses it.)"""
    import torch

    class NamedIO(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wrapped = module

        def forward(self, **feeds: Any) -> dict[str, Any]:
            result = self.wrapped(*(feeds[name] for name in inputs))
            values = result if isinstance(result, (tuple, list)) else (result,)
            return dict(zip(outputs, values, strict=True))

    return NamedIO()


def _feed(calibration: Dataset, index: int) -> dict[str, Any]:
    import torch

    return {name: torch.from_numpy(values[index : index + 1].copy()) for name, values in calibration.inputs.items()}


def _flatbuffer(edge: Any, scratch: Path) -> bytes:
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        path = Path(folder) / "model.tflite"
        with _quiet_litert_torch():
            edge.export(str(path))
        return path.read_bytes()


@contextlib.contextmanager
def _quiet_litert_torch() -> Iterator[None]:
    """litert-torch prints a progress tree to the console; edgeml reports progress itself."""
    before = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = before

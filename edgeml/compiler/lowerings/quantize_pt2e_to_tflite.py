"""torch module + calibration set → full-INT8 TFLite flatbuffer (int8 inputs and outputs), via litert-torch PT2E.

Steps: export the module as every LiteRT conversion does (export_for_litert.py: named I/O, batch 1, global
means channels-last); insert PT2E observers (symmetric int8 weights, per channel by default; int8
activations from histograms); run every calibration sample; convert; lower to TFLite with litert-torch.

`keep_float` names submodules (their path in the source module, e.g. "conv3" or "encoder.0.fc") whose
operators get no observers: they stay float32 with float weights, and the TFLite model dequantizes into them
and quantizes out of them (the int8-mixed candidate). A fused pattern (conv + relu) is skipped whole, so the
activation after a kept layer stays float too: the converter would otherwise quantize any float op it finds
between a DEQUANTIZE and a QUANTIZE, weights included.
The model keeps the source's NCHW inputs: litert-torch adds the layout change inside the graph (a RESHAPE
when there is one channel, else a TRANSPOSE, both of which Vela places on the Ethos-U NPU).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.lowerings.annotate_npu_operators import annotate_npu_operators
from edgeml.compiler.lowerings.decompose_prelu import decompose_prelu
from edgeml.compiler.lowerings.export_for_litert import export_for_litert, sample_feed
from edgeml.compiler.lowerings.litert_torch_convert import import_litert_torch, litert_torch_convert
from edgeml.compiler.lowerings.pt2e_layer_numerics import pt2e_layer_numerics
from edgeml.errors import CalibrationError, TargetError
from edgeml.signature import ModelSignature

__all__ = ["TfliteInt8", "quantize_pt2e_to_tflite"]

_WRAPPER = "wrapped."  # export_for_litert's named-I/O wrapper: every source submodule's path starts with it


@dataclass(frozen=True)
class TfliteInt8:
    model: bytes
    notes: tuple[str, ...]
    layers: tuple[dict[str, Any], ...] = ()  # per-layer numerics rows (pt2e_layer_numerics.py)


def quantize_pt2e_to_tflite(
    module: Any,
    signature: ModelSignature,
    calibration: Dataset | None,
    per_channel: bool,
    scratch: Path,
    needed_for: str,
    keep_float: tuple[str, ...] = (),
) -> TfliteInt8:
    import_litert_torch(needed_for)  # NOTE: a missing toolchain is named before any work
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    if calibration is None or not len(calibration):
        raise CalibrationError(f"{needed_for} quantizes to full INT8 and needs calibration data", "pass --calib DATA")
    exported = export_for_litert(module, signature, calibration)
    prelus = decompose_prelu(exported.graph)  # NOTE: before the observers, so each part gets its own
    config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=per_channel)
    quantizer = _quantizer(pt2e_quantizer, keep_float).set_global(config)
    _check_kept_layers(exported.graph, keep_float, needed_for)
    reference = copy.deepcopy(exported.graph)  # NOTE: the float graph the layers are compared with
    prepared = quantize_pt2e.prepare_pt2e(exported.graph, quantizer)
    with torch.no_grad():
        for i in range(len(calibration)):
            prepared(**sample_feed(calibration, i))
    converted = move_exported_model_to_eval(quantize_pt2e.convert_pt2e(prepared, fold_quantize=False))
    layers = tuple(pt2e_layer_numerics(reference, converted, calibration, sample_feed, module_paths))
    model = litert_torch_convert(converted, exported.sample, scratch, needed_for, quantizer)
    notes = (
        f"litert-torch PT2E full INT8 ({'per-channel' if per_channel else 'per-tensor'} weights), "
        f"calibrated on {len(calibration)} samples, batch 1, NCHW inputs as in the source",
        *((f"kept in float32: {', '.join(keep_float)}",) if keep_float else ()),
        *((f"{prelus} PReLU(s) as x + (α − 1)·min(x, 0), each part int8",) if prelus else ()),
        *exported.notes(),
    )
    return TfliteInt8(model, notes, layers)


def module_paths(node: Any) -> list[str]:
    """The source-module paths an exported FX node comes from ("conv3" for the wrapper's "wrapped.conv3"): its
    module stack, and the owners of the parameters it reads. NOTE: a .pt2 source is a flat graph module whose
    re-export keeps no module stack, but its parameters keep their paths ("wrapped.conv3.weight")."""
    stack = [path for path, _ in node.meta.get("nn_module_stack", {}).values()]
    params = [arg.target.rpartition(".")[0] for arg in node.args if getattr(arg, "op", None) == "get_attr"]
    return [path.removeprefix(_WRAPPER) for path in (*stack, *params) if path.startswith(_WRAPPER)]


def _in_any(node: Any, keep: tuple[str, ...]) -> bool:
    return any(path == k or path.startswith(k + ".") for path in module_paths(node) for k in keep)


def _quantizer(pt2e_quantizer: Any, keep_float: tuple[str, ...]) -> Any:
    """litert-torch's PT2E quantizer, which also puts in int8 the operators it leaves float that an int8 NPU
    runs (annotate_npu_operators.py); with `keep_float`, one that annotates nothing inside those submodules.

    NOTE: `set_module_name` cannot do this: it refuses a None config, and its filter strips a "L__self___"
    prefix that torch 2.13's module-stack keys no longer have, so it matches nothing. Every static pattern
    annotator takes the filter passed to `_annotate_all_static_patterns` and skips a pattern any node of
    which the filter rejects, so narrowing that one filter keeps whole patterns float.
    """

    class Quantizer(pt2e_quantizer.PT2EQuantizer):
        def _annotate_all_static_patterns(self, model: Any, config: Any, filter_fn: Any = None) -> Any:
            def quantize(node: Any) -> bool:
                return (filter_fn is None or filter_fn(node)) and not _in_any(node, keep_float)

            super()._annotate_all_static_patterns(model, config, quantize)
            if config is not None:
                annotate_npu_operators(model, config, quantize)
            return model

    return Quantizer()


def _check_kept_layers(graph: Any, keep_float: tuple[str, ...], needed_for: str) -> None:
    """Every name in `keep_float` must be a submodule with operators in the exported graph."""
    if not keep_float:
        return
    found = {path for node in graph.graph.nodes if node.op == "call_function" for path in module_paths(node)}
    missing = [k for k in keep_float if not any(p == k or p.startswith(k + ".") for p in found)]
    if missing:
        known = ", ".join(sorted(p for p in found if p)[:12])
        raise TargetError(
            f"{needed_for}: no submodule named {', '.join(missing)} runs in the exported model",
            f"name layers to keep in float by their module path in the PyTorch source, e.g. {known}",
        )

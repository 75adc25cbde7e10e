"""Float model + its QDQ-quantized twin → per-layer SQNR of the quantized activations, worst first.

Uses ONNX Runtime's own debugging tools (qdq_loss_debug): both models are augmented to output every
intermediate tensor, run on the same samples, and each QDQ activation is compared with the float one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.passes.quantize_static import feeds_for
from edgeml.signature import ModelSignature

__all__ = ["LayerError", "layer_errors"]

_SAMPLES = 32


@dataclass(frozen=True)
class LayerError:
    tensor: str
    node: str
    op: str
    sqnr_db: float

    def describe(self) -> str:
        return f"{self.node} ({self.op}, SQNR {self.sqnr_db:.1f} dB)"


def layer_errors(
    float_model: bytes, qdq_model: bytes, data: Dataset, signature: ModelSignature, scratch: Path
) -> list[LayerError]:
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    sample = data.take(slice(0, _SAMPLES))
    paths = {}
    for name, model in (("float", float_model), ("qdq", qdq_model)):
        src, aug = scratch / f"debug-{name}.onnx", scratch / f"debug-{name}-augmented.onnx"
        src.write_bytes(model)
        modify_model_output_intermediate_tensors(src, aug)
        paths[name] = aug
    feeds = list(feeds_for(signature, sample))
    acts = {name: collect_activations(str(path), iter(feeds)) for name, path in paths.items()}
    errors = compute_activation_error(create_activation_matching(acts["qdq"], acts["float"]))
    producers = {out: node for node in onnx.load_model_from_string(float_model).graph.node for out in node.output}
    found = []
    for tensor, err in errors.items():
        sqnr = err.get("xmodel_err")
        node = producers.get(tensor)
        if sqnr is None or node is None or not math.isfinite(float(sqnr)):
            continue
        found.append(LayerError(tensor, node.name or tensor, node.op_type, float(sqnr)))
    return sorted(found, key=lambda e: e.sqnr_db)

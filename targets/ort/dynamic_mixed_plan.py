"""The accuracy-aware `int8-mixed` candidate started from dynamic INT8 (cpu-ort on transformers): ONNX Runtime's
`quantize_dynamic` with named layers (float-model node names) excluded, so they stay float.

The layers are the float model's nodes that dynamic INT8 computes in integers: those with a weight
initializer (MatMul, Gemm, …) that the quantized model replaced (MatMul → MatMulInteger) or feeds a quantized
weight. Embedding lookups (Gather) are quantized too, but only to shrink them: keeping one in float buys no
speed and restores its full size (MiniLM's word embeddings: the 0.998 mix grew from 36 to 74 MB) for what
measured as noise there (+0.14, −0.11, −0.25 dB for its three tables), so they are not offered.

There is no per-layer numerics table for a dynamic model (layer tables exist for QDQ only), so the layers come
in the order the search cuts them when a model has more than it ranks: lowest weight SQNR first (the weight
as quantized vs float). On MiniLM that proxy agrees only loosely with the measured ranking (Spearman 0.43
over its 36 MatMuls; the 6 FFN down-projections have the lowest weight SQNR and 4 of them are in the measured
top 7), so the search does not rely on it where it can afford not to: a dynamic try needs no calibration (one
`quantize_dynamic` and one pass over the evaluation set: ~2 s on MiniLM, where an NNCF try is ~10 s), and
`MAX_RANKED` lets it measure every layer of a MiniLM-sized model (36 MatMuls: 75–115 s here). Larger models
rank their `MAX_RANKED` lowest-weight-SQNR layers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from edgeml.compiler.build_candidate import Built
from edgeml.compiler.passes.quantize_dynamic import QuantizeDynamic
from edgeml.compiler.plan import CandidatePlan
from edgeml.compiler.quantized_layers import QuantizedLayer

__all__ = ["MAX_RANKED", "mixed_layers", "mixed_plan", "quantizes_dynamically"]

MAX_RANKED = 48  # layers measured one by one: every layer of MiniLM-L6 (36), ~2 s each there
_SIZE_ONLY = frozenset({"Gather", "EmbedLayerNormalization"})  # weights quantized for size, computed in float


def quantizes_dynamically(plan: CandidatePlan) -> bool:
    return any(isinstance(p, QuantizeDynamic) for p in plan.passes)


def mixed_plan(base: CandidatePlan, keep_float: tuple[str, ...]) -> CandidatePlan:
    """The dynamic INT8 plan `base` with the layers `keep_float` (float-model node names) left in float."""
    if not quantizes_dynamically(base):
        raise TypeError(f"not a dynamic INT8 plan: {base.passes!r}")
    passes = [
        QuantizeDynamic(replace(p.config, exclude_nodes=tuple(keep_float))) if isinstance(p, QuantizeDynamic) else p
        for p in base.passes
    ]
    return replace(base, passes=passes)


def mixed_layers(base: Built, prepared: bytes) -> list[QuantizedLayer]:
    """The nodes of the float model `prepared` that the dynamic INT8 model `base` computes in INT8, lowest weight
    SQNR first."""
    import onnx

    float_model = onnx.load_model_from_string(prepared)
    quantized = onnx.load_model_from_string(base.onnx.data)
    after = {n.name: n for n in quantized.graph.node}
    weights = {i.name: i for i in float_model.graph.initializer}
    sqnr = _weight_sqnr(float_model, quantized)
    layers = []
    for node in float_model.graph.node:
        weight = next((i for i in node.input if i in weights), None)
        same = after.get(node.name)
        if weight is None or not node.name or node.op_type in _SIZE_ONLY:
            continue  # no weights, no name to exclude it by, or INT8 only in storage
        if same is not None and list(same.input) == list(node.input):
            continue  # left as it was: float
        layers.append((sqnr.get(weight, np.inf), _layer(node, int(np.prod(weights[weight].dims, dtype=np.int64)))))
    return [layer for _, layer in sorted(layers, key=lambda pair: pair[0])]


def _layer(node: Any, weights: int) -> QuantizedLayer:
    return QuantizedLayer(
        name=node.name, op=node.op_type, output=node.output[0], int8=True, has_weights=True, own_scale=False,
        int8_range=None, raw_output=node.output[0], rounded_output=node.output[0], weights=weights,
    )  # fmt: skip


def _weight_sqnr(float_model: Any, quantized: Any) -> dict[str, float]:
    """Float weight name → SQNR (dB) of its quantized copy (`W_quantized`, `W_scale`, `W_zero_point`)."""
    from onnx import numpy_helper

    q = {i.name: i for i in quantized.graph.initializer}
    found = {}
    for init in float_model.graph.initializer:
        parts = [q.get(f"{init.name}_{s}") for s in ("quantized", "scale", "zero_point")]
        if any(p is None for p in parts):
            continue
        w = numpy_helper.to_array(init).astype(np.float64)
        values, scale, zero = (numpy_helper.to_array(p).astype(np.float64) for p in parts)
        axis = _channel_axis(scale.size, w.shape)
        if axis is None or values.shape != w.shape:
            continue
        restored = (values - _along(zero, axis, w.ndim)) * _along(scale, axis, w.ndim)
        noise = float(np.sum((w - restored) ** 2))
        found[init.name] = np.inf if noise == 0 else 10 * np.log10(max(float(np.sum(w**2)), 1e-30) / noise)
    return found


def _channel_axis(channels: int, shape: tuple[int, ...]) -> int | None:
    """-1: one scale for the tensor; else the axis (last first) with one scale per entry; None: neither."""
    if channels == 1:
        return -1
    return next((a for a in reversed(range(len(shape))) if shape[a] == channels), None)


def _along(per_channel: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    if axis == -1:
        return per_channel.reshape(())
    return per_channel.reshape([-1 if a == axis else 1 for a in range(ndim)])

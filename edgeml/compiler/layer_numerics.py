"""Float model + QDQ twin → per-layer numerics: quantized vs float activations on calibration samples.

For each layer of the QDQ model (see quantized_layers.py), on the same samples: the SQNR, cosine and max
error of its rounded output against the float model's tensor; the float value range against the INT8 range
it is rounded into; the clipping rate (share of the float activation's values outside that range: what
QuantizeLinear cannot represent and clips — zero on the calibration samples themselves with minmax ranges,
not with percentile or entropy ones). The SQNR is cumulative — every later layer inherits earlier errors — so each layer
also gets `sqnr_drop_db`, the SQNR it loses against its worst input: its own contribution.

Both models run with ONNX Runtime graph optimizations off and every needed tensor added as an output: the
QDQ graph's reference semantics (DequantizeLinear → float op → QuantizeLinear). Costs one pass of each model
over `SAMPLES` calibration samples: well under the calibration itself, which runs all of them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.passes.quantize_static import feeds_for
from edgeml.compiler.quantized_layers import QuantizedLayer, quantized_layers
from edgeml.signature import ModelSignature

__all__ = ["CAP_DB", "SAMPLES", "LayerNumerics", "LayerProbe", "cosine", "join_samples", "measure_layer", "sqnr"]

SAMPLES = 64
CAP_DB = 200.0


@dataclass(frozen=True)
class LayerNumerics:
    layer: str
    op: str  # e.g. "Conv+Relu" where ONNX Runtime folded the Relu in
    tensor: str
    precision: str  # "int8" | "float"
    sqnr_db: float
    sqnr_drop_db: float
    cosine: float
    max_abs_err: float
    float_min: float
    float_max: float
    int8_min: float | None
    int8_max: float | None
    clipping_rate: float

    def describe(self) -> str:
        return f"{self.layer} ({self.op}, SQNR {self.sqnr_db:.1f} dB, −{self.sqnr_drop_db:.1f} dB here)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LayerProbe:
    """Runs the float model once over the samples; `compare` then runs each QDQ twin against it."""

    def __init__(self, float_model: bytes, data: Dataset, signature: ModelSignature, samples: int = SAMPLES) -> None:
        import onnx

        self.float_proto = onnx.load_model_from_string(float_model)
        self.feeds = list(feeds_for(signature, data.take(slice(0, samples))))
        self.one_sample_feeds = not data.batchable  # NOTE: a state on axis 1 must not be split along axis 0
        self.samples = min(samples, len(data))
        self._float = _run_with(self.float_proto, _all_tensors(self.float_proto), self.feeds)

    def has(self, tensor: str) -> bool:
        return tensor in self._float

    def float_tensor(self, tensor: str) -> np.ndarray:
        """The float model's `tensor` over the samples, stacked along the batch."""
        return self._float[tensor]

    def compare(self, qdq_model: bytes, kept_float: tuple[str, ...] = ()) -> list[LayerNumerics]:
        """Every INT8 layer and every layer named in `kept_float`, in graph order."""
        import onnx

        qdq = onnx.load_model_from_string(qdq_model)
        layers = [la for la in quantized_layers(qdq, self.float_proto) if la.output in self._float]
        rounded_inputs = _rounded_graph_inputs(qdq)
        wanted = {la.rounded_output for la in layers} | set(rounded_inputs.values())
        acts = _run_with(qdq, wanted, self.feeds)
        sqnr_of = {name: sqnr(self._float[name], acts[r]) for name, r in rounded_inputs.items() if r in acts}
        rows = []
        for la in layers:
            row = self._numerics(la, acts, sqnr_of)
            sqnr_of[la.raw_output] = row.sqnr_db
            rows.append(row)
        return [r for r, la in zip(rows, layers, strict=True) if la.int8 or la.name in kept_float]

    def _numerics(self, la: QuantizedLayer, acts: dict[str, np.ndarray], sqnr_of: dict[str, float]) -> LayerNumerics:
        upstream = min((sqnr_of[t] for t in la.inputs_from if t in sqnr_of), default=CAP_DB)
        ref, out = self._float[la.output], acts[la.rounded_output]
        precision = "int8" if la.int8 else "float"
        return measure_layer(la.name, la.label, la.output, precision, ref, out, la.int8_range, upstream)


def measure_layer(
    layer: str,
    op: str,
    tensor: str,
    precision: str,
    ref: np.ndarray,
    out: np.ndarray,
    int8_range: tuple[float, float] | None,
    worst_upstream_db: float = CAP_DB,
) -> LayerNumerics:
    """One layer's row: its output `out` against the float model's `ref` (same samples, same layout), the INT8
    range it is rounded into (None: not known), and the SQNR of its worst input (CAP_DB: none measured). Every
    per-layer table (QDQ, OpenVINO IR, PT2E) builds its rows here, so they mean the same thing."""
    ref, out = ref.astype(np.float64), out.astype(np.float64).reshape(ref.shape)
    value = sqnr(ref, out)
    lo, hi = int8_range if int8_range else (None, None)
    half_step = 0.0 if lo is None else (hi - lo) / 255 / 2
    clipped = float(((ref < lo - half_step) | (ref > hi + half_step)).mean()) if lo is not None else 0.0
    return LayerNumerics(
        layer=layer,
        op=op,
        tensor=tensor,
        precision=precision,
        sqnr_db=round(value, 3),
        sqnr_drop_db=round(max(0.0, worst_upstream_db - value), 3),
        cosine=round(cosine(ref, out), 6),
        max_abs_err=float(np.abs(ref - out).max()),
        float_min=float(ref.min()),
        float_max=float(ref.max()),
        int8_min=None if lo is None else round(lo, 6),
        int8_max=None if hi is None else round(hi, 6),
        clipping_rate=round(clipped, 6),
    )


def _all_tensors(proto: Any) -> set[str]:
    return {out for node in proto.graph.node for out in node.output if out}


def _rounded_graph_inputs(qdq: Any) -> dict[str, str]:
    """graph input → its QuantizeLinear → DequantizeLinear output, where the QDQ model rounds it."""
    consumers: dict[str, list[Any]] = {}
    for n in qdq.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    found = {}
    for value in qdq.graph.input:
        q = next((c for c in consumers.get(value.name, []) if c.op_type == "QuantizeLinear"), None)
        dq = next((c for c in consumers.get(q.output[0], []) if c.op_type == "DequantizeLinear"), None) if q else None
        if dq is not None:
            found[value.name] = dq.output[0]
    return found


def _run_with(proto: Any, tensors: set[str], feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Run `proto` over `feeds` with `tensors` added as outputs; returns them (and the graph inputs) stacked."""
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    outputs = {o.name for o in model.graph.output}
    for name in sorted(tensors - outputs):
        model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    parts = [dict(zip(names, session.run(names, feed), strict=True)) | feed for feed in feeds]
    # NOTE: scalars (a transformer's shape arithmetic, e.g. Gather of a Shape) are stacked, not concatenated
    return {name: join_samples([p[name] for p in parts]) for name in parts[0]}


def join_samples(values: list[np.ndarray]) -> np.ndarray:
    """Per-feed values of one tensor → one array along the batch (stacked for scalars)."""
    if not np.ndim(values[0]):
        return np.stack(values)
    try:
        return np.concatenate(values)
    except ValueError:  # NOTE: its batch is not axis 0 (sequence-first [T, N, C]): flattened, one row
        return np.concatenate([v.reshape(-1) for v in values])[None]


def sqnr(ref: np.ndarray, out: np.ndarray) -> float:
    ref, out = ref.astype(np.float64), out.astype(np.float64)
    noise = float(((ref - out) ** 2).sum())
    signal = float((ref**2).sum())
    if noise == 0:
        return CAP_DB
    return min(CAP_DB, 10 * math.log10(max(signal, 1e-30) / noise))


def cosine(ref: np.ndarray, out: np.ndarray) -> float:
    r, o = ref.reshape(len(ref), -1), out.reshape(len(out), -1)
    nr, no = np.linalg.norm(r, axis=1), np.linalg.norm(o, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (r * o).sum(axis=1) / (nr * no)
    return float(np.mean(np.where((nr == 0) & (no == 0), 1.0, np.nan_to_num(cos, nan=0.0))))

"""Float model + QDQ twin → per-layer numerics: quantized vs float activations on calibration samples.

For each layer of the QDQ model (see quantized_layers.py), on the same samples: the SQNR, cosine and max
error of its rounded output against the float model's tensor; the float value range against the INT8 range
it is rounded into; the clipping rate (share of the float activation's values outside that range: what
QuantizeLinear cannot represent and clips — zero on the calibration samples themselves with minmax ranges,
not with percentile or entropy ones). The SQNR is cumulative — every later layer inherits earlier errors — so each layer
also gets `sqnr_drop_db`, the SQNR it loses against its worst input: its own contribution.

Both models run with ONNX Runtime graph optimizations off and every needed tensor added as an output: the
QDQ graph's reference semantics (DequantizeLinear → float op → QuantizeLinear). Costs one pass of each model
over `SAMPLES` calibration samples: well under the calibration itself, which runs all of them. Every figure is
a sum over samples (layer_stats.py), so the samples stream through in chunks that fit the memory budget: a
4.5 MB detector's activations at 480×640 take 0.5 GB per sample.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.layer_stats import CAP_DB, LayerStats
from edgeml.compiler.memory_budget import current_budget
from edgeml.compiler.passes.quantize_static import CALIBRATION_BATCH
from edgeml.compiler.quantized_layers import quantized_layers
from edgeml.signature import ModelSignature

__all__ = [
    "CAP_DB",
    "SAMPLES",
    "LayerNumerics",
    "LayerProbe",
    "activation_bytes",
    "cosine",
    "join_samples",
    "measure_layer",
    "sqnr",
]

SAMPLES = 64
log = logging.getLogger(__name__)
Feed = dict[str, np.ndarray]


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
    """The float model over the samples, chunk by chunk; `compare` then runs each QDQ twin against it.

    Every tensor of every sample is kept only where that fits the memory budget (memory_budget.py): then the
    float model runs once for all candidates. Otherwise each comparison streams: the float model and the twin
    run on a chunk of samples, each layer's sums (layer_stats.py) take it in, and the chunk is dropped.
    """

    def __init__(self, float_model: bytes, data: Dataset, signature: ModelSignature, samples: int = SAMPLES) -> None:
        import onnx

        self.float_proto = onnx.load_model_from_string(float_model)
        self.samples = min(samples, len(data))
        self.data = data.take(slice(0, self.samples))
        self.one_sample_feeds = not data.batchable  # NOTE: a state on axis 1 must not be split along axis 0
        dynamic = all(spec.batch_is_dynamic for spec in signature.inputs)
        self._feed_size = CALIBRATION_BATCH if dynamic and data.batchable else 1
        self.budget = current_budget()
        first = self.data.take(slice(0, 1))
        estimate = activation_bytes(self.float_proto, first.feed(slice(0, 1)))
        self.budget.samples_at_once(2 * estimate, "the per-layer probe (every tensor of the float model)", 1)
        feeds = list(first.batches(1))
        parts = _run_parts(self.float_proto, _all_tensors(self.float_proto), feeds)
        self.tensor_bytes = {name: int(np.asarray(v).nbytes) for name, v in parts[0].items()}  # one sample's
        self._float: list[tuple[Feed, Feed]] | None = None
        if self.budget.fits(sum(self.tensor_bytes.values()) * self.samples):
            rest = self._feeds(self.data.take(slice(1, self.samples))) if self.samples > 1 else []
            self._float = list(
                zip(feeds + rest, parts + _run_parts(self.float_proto, set(parts[0]), rest), strict=True)
            )

    @property
    def streams(self) -> bool:
        """True when the float activations do not fit the budget: each comparison reruns the float model."""
        return self._float is None

    def has(self, tensor: str) -> bool:
        return tensor in self.tensor_bytes

    def float_tensor(self, tensor: str) -> np.ndarray:
        """The float model's `tensor` over the samples, stacked along the batch."""
        return join_samples([ref[tensor] for _, refs in self.chunks({tensor}, 0) for ref in refs])

    def chunks(self, tensors: set[str], other_bytes_per_sample: float) -> Iterator[tuple[list[Feed], list[Feed]]]:
        """(feeds, the float model's `tensors` for each feed) over the samples, as many samples at a time as
        the memory budget holds beside the `other_bytes_per_sample` the caller computes from them."""
        tensors = {t for t in tensors if t in self.tensor_bytes}
        fresh = 0 if self._float is not None else sum(self.tensor_bytes[t] for t in tensors)
        # NOTE: ×2: ONNX Runtime hands each output over as a copy, so a run briefly holds both
        n = self.budget.samples_at_once(2 * (fresh + other_bytes_per_sample), "the per-layer probe", self.samples)
        if self._float is not None:
            yield from _grouped(self._float, n, tensors)
            return
        log.info("per-layer probe streams %d samples, %d at a time (memory budget)", self.samples, n)
        runner = _Runner(self.float_proto, tensors)  # NOTE: one session for every chunk
        for start in range(0, self.samples, n):
            feeds = self._feeds(self.data.take(slice(start, start + n)))
            yield feeds, runner.run(feeds)

    def _feeds(self, data: Dataset) -> list[Feed]:
        return list(data.batches(self._feed_size))

    def compare(self, qdq_model: bytes, kept_float: tuple[str, ...] = ()) -> list[LayerNumerics]:
        """Every INT8 layer and every layer named in `kept_float`, in graph order."""
        import onnx

        qdq = onnx.load_model_from_string(qdq_model)
        layers = [la for la in quantized_layers(qdq, self.float_proto) if self.has(la.output)]
        rounded_inputs = {k: v for k, v in _rounded_graph_inputs(qdq).items() if self.has(k)}
        stats = {la.name: LayerStats(la.int8_range) for la in layers}
        inputs = {name: LayerStats(None) for name in rounded_inputs}
        needed = {la.output for la in layers} | set(rounded_inputs)
        twin = {la.rounded_output for la in layers} | set(rounded_inputs.values())
        twin_bytes = sum(self.tensor_bytes[t] for t in needed)  # NOTE: the twin's tensors have the float shapes
        runner = _Runner(qdq, twin)
        for feeds, refs in self.chunks(needed, twin_bytes):
            for ref, act in zip(refs, runner.run(feeds), strict=True):
                for name, rounded in rounded_inputs.items():
                    if rounded in act:
                        inputs[name].add(ref[name], act[rounded])
                for la in layers:
                    stats[la.name].add(ref[la.output], act[la.rounded_output])
        sqnr_of = {name: s.sqnr() for name, s in inputs.items() if s.count}
        rows = []
        for la in layers:
            upstream = min((sqnr_of[t] for t in la.inputs_from if t in sqnr_of), default=CAP_DB)
            row = layer_row(la.name, la.label, la.output, "int8" if la.int8 else "float", stats[la.name], upstream)
            sqnr_of[la.raw_output] = row.sqnr_db
            rows.append(row)
        return [r for r, la in zip(rows, layers, strict=True) if la.int8 or la.name in kept_float]


def _grouped(kept: list[tuple[Feed, Feed]], samples: int, tensors: set[str]) -> Iterator[tuple[list[Feed], list[Feed]]]:
    """Kept (feed, float values) pairs in groups of about `samples` samples."""
    feeds: list[Feed] = []
    refs: list[Feed] = []
    held = 0
    for feed, part in kept:
        feeds.append(feed)
        refs.append({t: part[t] for t in tensors})
        held += len(next(iter(feed.values()))) if feed and np.ndim(next(iter(feed.values()))) else 1
        if held >= samples:
            yield feeds, refs
            feeds, refs, held = [], [], 0
    if feeds:
        yield feeds, refs


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
    per-layer table (QDQ, OpenVINO IR, PT2E) builds its rows from LayerStats, so they mean the same thing."""
    stats = LayerStats(int8_range)
    stats.add(ref, out)
    return layer_row(layer, op, tensor, precision, stats, worst_upstream_db)


def layer_row(
    layer: str, op: str, tensor: str, precision: str, stats: LayerStats, worst_upstream_db: float = CAP_DB
) -> LayerNumerics:
    """A layer's row from its sums over the samples."""
    value = stats.sqnr()
    lo, hi = stats.int8_range if stats.int8_range else (None, None)
    return LayerNumerics(
        layer=layer,
        op=op,
        tensor=tensor,
        precision=precision,
        sqnr_db=round(value, 3),
        sqnr_drop_db=round(max(0.0, worst_upstream_db - value), 3),
        cosine=round(stats.cosine(), 6),
        max_abs_err=stats.max_abs_err,
        float_min=stats.float_min,
        float_max=stats.float_max,
        int8_min=None if lo is None else round(lo, 6),
        int8_max=None if hi is None else round(hi, 6),
        clipping_rate=round(stats.clipping_rate(), 6),
    )


def activation_bytes(proto: Any, feed: Feed) -> int:
    """What the intermediate tensors of `proto` take for `feed`, from ONNX shape inference with the feed's
    shapes, before anything runs (tensors whose shape it cannot infer count 0: a lower bound)."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    del model.graph.initializer[:]  # NOTE: shapes only; copying the weights would cost memory for nothing
    del model.graph.value_info[:]  # NOTE: symbolic shapes recorded at export would stay unresolved
    for value in model.graph.output:
        value.type.tensor_type.ClearField("shape")
    model.graph.input.extend(
        onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in proto.graph.initializer
    )
    for value in model.graph.input:
        if value.name in feed and value.type.HasField("tensor_type"):
            shape = value.type.tensor_type.shape
            shape.ClearField("dim")
            for d in np.shape(feed[value.name]):
                shape.dim.add().dim_value = int(d)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # NOTE: an estimate only; the first run measures the real sizes
        return 0
    total = 0
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        t = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in t.shape.dim]
        if t.HasField("shape") and all(d > 0 for d in dims):
            total += int(np.prod(dims, dtype=np.int64)) * _itemsize(t.elem_type)
    return total


def _itemsize(elem_type: int) -> int:
    import onnx

    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return 4


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


def _run_parts(proto: Any, tensors: set[str], feeds: list[Feed]) -> list[Feed]:
    """Run `proto` over `feeds` with `tensors` added as outputs; returns them (and the graph inputs) per feed."""
    return _Runner(proto, tensors).run(feeds) if feeds else []


class _Runner:
    """`proto` with `tensors` added as outputs, in an ONNX Runtime session without its memory arena: every
    output is handed over, so an arena would only keep the chunk's peak after the chunk is gone."""

    def __init__(self, proto: Any, tensors: set[str]) -> None:
        import onnx
        import onnxruntime as ort

        model = onnx.ModelProto()
        model.CopyFrom(proto)
        outputs = {o.name for o in model.graph.output}
        for name in sorted(tensors - outputs):
            model.graph.output.append(onnx.ValueInfoProto(name=name))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: list[Feed]) -> list[Feed]:
        return [dict(zip(self.names, self.session.run(self.names, feed), strict=True)) | feed for feed in feeds]


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

"""A closed ModelPeriod → the bytes of one `edgeml/v1/telemetry` message, compressed when that is smaller.

The protocol's `Telemetry` payload carries the latency sketch, call/error counts, input drift counts and
the output class histogram. The agent adds optional fields (docs/agent.md; receivers that do not know
them ignore them, as the protocol's versioning rules require):

    counts.dropped   calls only counted because the telemetry thread fell behind (no latency or drift); absent
                     when 0
    confidence       output → counts over the reference profile's top-1 confidence bins
    output_values    output → counts over a non-classifier output's reference bins
    accuracy         output → {"labelled": n, "correct": n} from feedback
    memory           {"rss_bytes": n, "peak_rss_bytes": n} of the agent process
    samples          raw input samples, only with upload_samples (capped per batch and per sample)

Kept off the wire: the drift scores (PSI, Jensen–Shannon), which the fleet computes from the counts and the
reference profile it holds; the agent still uses them for its drift events and its status summary. The
sketch's `sum`, `min` and `max` go with 6 significant digits (at most 5·10⁻⁶ relative, far inside its α).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeml.artifact.canonical import canonical_json
from edgeml.device_agent.telemetry.memory_usage import MemoryUsage
from edgeml.protocol import MAX_MESSAGE_BYTES, ProtocolError, Telemetry, compress_payload

if TYPE_CHECKING:
    from edgeml.device_agent.telemetry.model_period import ModelPeriod

__all__ = ["TelemetryBatch", "build_batch"]

log = logging.getLogger(__name__)

_MAX_NAME = 128
_DIGITS = 6  # significant digits of the sketch's sum, min and max on the wire


@dataclass(frozen=True)
class TelemetryBatch:
    telemetry: Telemetry
    payload: bytes  # what goes on the wire: zlib-compressed JSON, or plain JSON when that is not larger
    drift_scores: dict[str, Any]


def build_batch(
    period: ModelPeriod, seq: int, end: float, memory: MemoryUsage | None = None, compress: bool = True
) -> TelemetryBatch:
    """Encode `period` as telemetry batch number `seq`, checked as a receiver will check it."""
    telemetry = _telemetry(period, seq, end)
    body = telemetry.to_dict()
    body["latency_ms"] = _rounded(body["latency_ms"])
    if period.dropped:
        body["counts"]["dropped"] = period.dropped
    body |= _extras(period, memory)
    Telemetry.from_dict(body)  # never send what intake would refuse
    payload = canonical_json(body)
    if len(payload) > MAX_MESSAGE_BYTES and body.pop("samples", None) is not None:
        log.warning("telemetry batch %d was over %d bytes: its raw samples were left out", seq, MAX_MESSAGE_BYTES)
        payload = canonical_json(body)
    if len(payload) > MAX_MESSAGE_BYTES:  # NOTE: the cap is on the JSON, so a receiver's inflation cap holds too
        raise ProtocolError("too_large", f"telemetry batch {seq} is {len(payload)} bytes, over {MAX_MESSAGE_BYTES}")
    return TelemetryBatch(telemetry, compress_payload(payload) if compress else payload, _scores(period))


def _telemetry(period: ModelPeriod, seq: int, end: float) -> Telemetry:
    bins = period.serving.bins
    drift = {
        b.name: {f: tuple(int(n) for n in c) for f, c in enumerate(counts) if c.any()}
        for b, counts in zip(bins.inputs, period.input_counts, strict=True)
        if len(b.name) <= _MAX_NAME and any(c.any() for c in counts)
    }
    classes = {
        o.name: tuple(int(n) for n in c)
        for o, c in zip(bins.outputs, period.class_counts, strict=True)
        if o.kind == "classes" and len(o.name) <= _MAX_NAME and c.any()
    }
    start = int(period.start)
    return Telemetry(
        seq, start, max(start, int(end)), period.serving.model, period.latency_ms, period.calls, period.errors,
        drift, classes,
    )  # fmt: skip


def _scores(period: ModelPeriod) -> dict[str, Any]:
    inputs = {
        name: {str(f): [round(p, 3), round(j, 3)] for f, (p, j) in features.items()}
        for name, features in period.drift_scores().items()
    }
    outputs = {name: [round(p, 3), round(j, 3)] for name, (p, j) in period.output_scores().items()}
    return {k: v for k, v in (("inputs", inputs), ("outputs", outputs)) if v}


def _rounded(sketch: dict[str, Any]) -> dict[str, Any]:
    return sketch | {k: float(f"{sketch[k]:.{_DIGITS}g}") for k in ("sum", "min", "max") if sketch[k] is not None}


def _extras(period: ModelPeriod, memory: MemoryUsage | None) -> dict[str, Any]:
    outputs = period.serving.bins.outputs
    extras: dict[str, Any] = {
        "confidence": _histograms(outputs, period.confidence_counts),
        "output_values": _histograms(outputs, period.value_counts),
        "accuracy": {name: {"labelled": n, "correct": k} for name, (n, k) in period.accuracy.items()},
    }
    if memory is not None:
        extras["memory"] = {"rss_bytes": memory.rss_bytes, "peak_rss_bytes": memory.peak_rss_bytes}
    if period.samples:
        extras["samples"] = period.samples
    return {k: v for k, v in extras.items() if v}


def _histograms(outputs: Any, counts: list[Any]) -> dict[str, list[int]]:
    return {o.name: [int(n) for n in c] for o, c in zip(outputs, counts, strict=True) if c is not None and c.any()}

"""Device → fleet, once per period: latency sketch, call and error counts, drift and output histograms.

`seq` grows by one per batch on a device (batches spooled while offline keep theirs), so intake stores
each (device, seq) once however often QoS 1 or a spool replay delivers it. Latency is a DDSketch over
milliseconds; drift counts line up bin for bin with the artifact manifest's reference profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from edgeml.protocol.fields import Fields, check_counts, check_text, header
from edgeml.protocol.kind import Kind
from edgeml.protocol.model_ref import ModelRef
from edgeml.protocol.protocol_error import ProtocolError
from edgeml.sketches import DDSketch, SketchError

__all__ = ["Telemetry"]

MAX_TENSORS = 64  # inputs or outputs per model
MAX_FEATURES = 64  # per input: edgeml.drift.MAX_FEATURES
MAX_BINS = 256  # per feature histogram
MAX_CLASSES = 1000  # per classifier output

Histograms = Mapping[str, Mapping[int, tuple[int, ...]]]


@dataclass(frozen=True)
class Telemetry:
    """`drift`: input name → feature index → counts over the reference bins; `output_classes`: output
    name → count per predicted class; `period_start`/`period_end`: epoch seconds."""

    KIND: ClassVar[Kind] = Kind.TELEMETRY

    seq: int
    period_start: int
    period_end: int
    model: ModelRef | None
    latency_ms: DDSketch
    calls: int
    errors: int
    drift: Histograms = field(default_factory=dict)
    output_classes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **header(self.KIND),
            "seq": self.seq,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "model": self.model.to_dict() if self.model else None,
            "latency_ms": self.latency_ms.to_dict(),
            "counts": {"calls": self.calls, "errors": self.errors},
            "drift": {name: {str(i): list(c) for i, c in feats.items()} for name, feats in self.drift.items()},
            "output_classes": {name: list(c) for name, c in self.output_classes.items()},
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Telemetry:
        f = Fields.payload(obj, cls.KIND)
        start, end = f.integer("period_start"), f.integer("period_end")
        if end < start:
            raise ProtocolError("out_of_range", f"telemetry period ends ({end}) before it starts ({start})")
        counts = f.nested("counts")
        return cls(
            seq=f.integer("seq"),
            period_start=start,
            period_end=end,
            model=ModelRef.read_optional(f, "model"),
            latency_ms=_sketch(f.raw("latency_ms")),
            calls=counts.integer("calls"),
            errors=counts.integer("errors"),
            drift={_name(k, "drift"): _features(v, k) for k, v in f.mapping("drift", MAX_TENSORS).items()},
            output_classes={
                _name(k, "output_classes"): check_counts(v, f"telemetry.output_classes.{k}", MAX_CLASSES)
                for k, v in f.mapping("output_classes", MAX_TENSORS).items()
            },
        )


def _sketch(obj: Any) -> DDSketch:
    try:
        return DDSketch.from_dict(obj)
    except SketchError as exc:
        raise ProtocolError("invalid_field", f"telemetry.latency_ms: {exc.message}") from None


def _name(name: str, where: str) -> str:
    return check_text(name, f"telemetry.{where} key", 128)


def _features(obj: Any, name: str) -> dict[int, tuple[int, ...]]:
    where = f"telemetry.drift.{name}"
    return {_index(k, where): check_counts(v, f"{where}.{k}", MAX_BINS) for k, v in _bounded(obj, where).items()}


def _bounded(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ProtocolError("invalid_field", f"{where} is not a JSON object of feature index → counts")
    if len(obj) > MAX_FEATURES:
        raise ProtocolError("too_many_items", f"{where} has {len(obj)} features, at most {MAX_FEATURES}")
    return obj


def _index(key: str, where: str) -> int:
    if not (len(key) <= 3 and key.isascii() and key.isdigit() and str(int(key)) == key and int(key) < MAX_FEATURES):
        raise ProtocolError("invalid_field", f"{where} key {key!r} is not a feature index (0, 1, 2, …)")
    return int(key)

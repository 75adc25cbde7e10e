"""Device telemetry batches → stored once per (device, seq), and per-version aggregates the gates read.

Idempotent: a replayed batch changes nothing. Fair: aggregates weigh devices, not calls — the error rate
is the mean of per-device rates, a latency quantile the median of per-device quantiles, and drift
histograms are averaged as proportions — so one chatty or broken device moves a fleet figure by at most
its share.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field

from edgeml.drift import psi
from edgeml.fleet.database import Database
from edgeml.protocol import MAX_MESSAGE_BYTES, ProtocolError, Telemetry, inflate_payload
from edgeml.sketches import DDSketch

__all__ = ["Aggregate", "TelemetryIntake"]


@dataclass
class Aggregate:
    devices: int = 0
    calls: int = 0
    errors: int = 0
    error_rates: list[float] = field(default_factory=list)
    sketches: list[DDSketch] = field(default_factory=list)
    drift: dict[str, dict[int, list[float]]] = field(default_factory=dict)  # input → feature → mean proportions
    labelled: int = 0  # calls with ground-truth feedback
    correct: int = 0

    @property
    def error_rate(self) -> float | None:
        return statistics.fmean(self.error_rates) if self.error_rates else None

    def latency(self, q: float) -> float | None:
        values = [v for s in self.sketches if (v := s.quantile(q)) is not None]
        return statistics.median(values) if values else None

    def worst_psi(self, reference_profile: dict) -> float | None:
        scores = []
        for name, features in self.drift.items():
            ref = reference_profile.get("inputs", {}).get(name, {}).get("features", [])
            scores += [psi(ref[i]["counts"], p) for i, p in features.items() if i < len(ref)]
        return max(scores) if scores else None


class TelemetryIntake:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, device_id: str, t: Telemetry, now: float, raw: bytes = b"") -> bool:
        """Store a batch; False when this (device, seq) was already stored, whatever its encoding (plain or
        compressed). `raw` is the payload as sent, for the optional fields the agent adds (accuracy from
        ground-truth feedback)."""
        labelled, correct = feedback_accuracy(raw)
        drift = {n: {str(i): list(c) for i, c in f.items()} for n, f in t.drift.items()}
        with self.db.transaction(exclusive=False, durable=False) as tx:  # NOTE: statistics; idempotent insert
            cur = tx.execute(
                "INSERT INTO telemetry VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (
                    device_id,
                    t.seq,
                    t.model.sha256 if t.model else None,
                    t.model.release if t.model else None,
                    t.period_start,
                    t.period_end,
                    now,
                    json.dumps(t.latency_ms.to_dict()),
                    t.calls,
                    t.errors,
                    json.dumps(drift),
                    json.dumps({k: list(v) for k, v in t.output_classes.items()}),
                    labelled,
                    correct,
                ),
            )
            return cur.rowcount == 1

    def aggregate(self, artifact_shas: list[str], devices: list[str] | None, since: float) -> Aggregate:
        """Batches of these artifacts (from these devices) received since `since` by the fleet's clock:
        device clocks drift, so the window is judged on arrival."""
        marks = ",".join("?" * len(artifact_shas)) or "NULL"
        rows = self.db.query(
            f"SELECT * FROM telemetry WHERE artifact_sha IN ({marks}) AND received_at >= ?", (*artifact_shas, since)
        )
        per_device: dict[str, list] = {}
        for r in rows:
            if devices is None or r["device_id"] in devices:
                per_device.setdefault(r["device_id"], []).append(r)
        agg = Aggregate()
        for batches in per_device.values():
            _add_device(agg, batches)
        _average_drift(agg, len(per_device))
        return agg


def _add_device(agg: Aggregate, batches: list) -> None:
    sketch = DDSketch.from_dict(json.loads(batches[0]["latency"]))
    for b in batches[1:]:
        sketch.merge(DDSketch.from_dict(json.loads(b["latency"])))
    calls, errors = sum(b["calls"] for b in batches), sum(b["errors"] for b in batches)
    agg.devices += 1
    agg.labelled += sum(b["labelled"] for b in batches)
    agg.correct += sum(b["correct"] for b in batches)
    agg.calls += calls
    agg.errors += errors
    if calls:
        agg.error_rates.append(errors / calls)
    if sketch.count:
        agg.sketches.append(sketch)
    counts: dict[str, dict[int, list[float]]] = {}
    for b in batches:
        for name, features in json.loads(b["drift"]).items():
            for i, c in features.items():
                acc = counts.setdefault(name, {}).setdefault(int(i), [0.0] * len(c))
                counts[name][int(i)] = [a + x for a, x in zip(acc, c, strict=False)]
    for name, features in counts.items():
        for i, c in features.items():
            total = sum(c) or 1.0
            acc = agg.drift.setdefault(name, {}).setdefault(i, [0.0] * len(c))
            agg.drift[name][i] = [a + x / total for a, x in zip(acc, c, strict=False)]


def _average_drift(agg: Aggregate, n: int) -> None:
    for features in agg.drift.values():
        for i, props in features.items():
            features[i] = [p / max(n, 1) for p in props]


def feedback_accuracy(raw: bytes) -> tuple[int, int]:
    """(labelled, correct) summed over outputs from the agent's optional `accuracy` field of a payload as sent
    (plain or compressed JSON); (0, 0) when it is absent or malformed (optional fields never reject a batch)."""
    try:
        acc = json.loads(inflate_payload(raw, MAX_MESSAGE_BYTES)).get("accuracy") if raw else None
        pairs = [(int(v["labelled"]), int(v["correct"])) for v in acc.values()] if isinstance(acc, dict) else []
    except (ProtocolError, ValueError, TypeError, KeyError, AttributeError):
        return 0, 0
    if any(n < 0 or not 0 <= k <= n for n, k in pairs):
        return 0, 0
    return sum(n for n, _ in pairs), sum(k for _, k in pairs)

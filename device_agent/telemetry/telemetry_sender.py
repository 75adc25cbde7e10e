"""Every `period_s`: close the telemetry periods, encode one batch per model that served (compressed unless
`compress` is off), hand each to the outbox (published, or spooled while offline), report drift past the
threshold as a `drift` event, and leave a one-line summary in `state_dir/agent/last_telemetry.json` for
`edgeml-agent status`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgeml.atomic_files import write_json_atomic
from edgeml.device_agent.messaging.event_reporter import EventContext, EventReporter
from edgeml.device_agent.messaging.outbox import Outbox
from edgeml.device_agent.messaging.sequence_counter import SequenceCounter
from edgeml.device_agent.telemetry.drift_alarm import DriftAlarm
from edgeml.device_agent.telemetry.memory_usage import memory_usage
from edgeml.device_agent.telemetry.telemetry_batch import TelemetryBatch, build_batch
from edgeml.device_agent.telemetry.telemetry_collector import TelemetryCollector
from edgeml.errors import EdgemlError
from edgeml.protocol import telemetry_topic

if TYPE_CHECKING:
    from edgeml.device_agent.telemetry.model_period import ModelPeriod

__all__ = ["TelemetrySender"]

log = logging.getLogger(__name__)


class TelemetrySender:
    def __init__(
        self,
        device_id: str,
        collector: TelemetryCollector,
        outbox: Outbox,
        counter: SequenceCounter,
        alarm: DriftAlarm,
        reporter: EventReporter,
        period_s: float,
        summary_path: Path,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        compress: bool = True,
    ) -> None:
        self.topic = telemetry_topic(device_id)
        self.collector = collector
        self.outbox = outbox
        self.counter = counter
        self.alarm = alarm
        self.reporter = reporter
        self.period_s = period_s
        self.summary_path = summary_path
        self.clock = clock
        self.monotonic = monotonic
        self.compress = compress
        self.sent_bytes = 0
        self._next_cut = monotonic() + period_s

    def maybe_send(self) -> list[TelemetryBatch]:
        """Send when the period is over; returns the batches sent (usually none)."""
        if self.monotonic() < self._next_cut:
            return []
        return self.send_now()

    def send_now(self) -> list[TelemetryBatch]:
        """Close the period now and send its batches."""
        self._next_cut = self.monotonic() + self.period_s
        end, memory = self.clock(), memory_usage()
        batches = []
        for period in self.collector.cut():
            try:
                batch = build_batch(period, self.counter.next(), end, memory, self.compress)
            except EdgemlError as exc:
                log.error("telemetry for %s not sent: %s", period.serving.describe(), exc.message)
                continue
            delivery = self.outbox.send(self.topic, batch.payload)
            self.sent_bytes += len(batch.payload)
            self._summarise(batch, delivery)
            self._check_drift(period, batch)
            batches.append(batch)
        return batches

    def _check_drift(self, period: ModelPeriod, batch: TelemetryBatch) -> None:
        reason = self.alarm.check(period, batch.drift_scores)
        if reason is None:
            return
        model = batch.telemetry.model
        context = EventContext(model.sha256, model.release, None) if model else EventContext()
        self.reporter.report("drift", "committed", False, reason, context)

    def _summarise(self, batch: TelemetryBatch, delivery: str) -> None:
        t = batch.telemetry
        summary = {
            "seq": t.seq, "period_start": t.period_start, "period_end": t.period_end, "calls": t.calls,
            "errors": t.errors, "p50_ms": t.latency_ms.quantile(0.5), "p99_ms": t.latency_ms.quantile(0.99),
            "bytes": len(batch.payload), "delivery": delivery,
            "model": t.model.to_dict() if t.model else None, "drift_scores": batch.drift_scores,
        }  # fmt: skip
        try:
            write_json_atomic(self.summary_path, summary, durable=False)
        except OSError as exc:
            log.debug("telemetry summary not written: %s", exc)

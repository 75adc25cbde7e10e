"""Telemetry: predict calls → per-model periods (latency sketch, counts, drift over the reference bins, output
distribution) → compact batches sent every period, and drift events that open retraining requests.

    telemetry_collector.py  predict calls in, per-model periods out (TelemetryCollector)
    model_period.py         one model's period; reference_bins.py the bins it counts inputs over
    telemetry_batch.py      a period → the bytes of one telemetry message
    telemetry_sender.py     every period_s: close, encode, send or spool (TelemetrySender)
    drift_alarm.py          a period's drift → a `drift` event, rate-limited; memory_usage.py RSS figures
"""

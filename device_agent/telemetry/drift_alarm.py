"""A closed telemetry period's drift scores → the reason for a `drift` event (a retraining signal), or None.

A period is judged once it holds `min_calls` calls: a feature (or a classifier's class distribution)
whose PSI against the manifest's reference reaches `threshold` has drifted. At most one event per model
per `interval_s`, so a lasting shift does not flood the fleet; the per-period scores stay in the agent's
status summary (`last_telemetry.json`), and the fleet computes its own from every batch's drift counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgeml.device_agent.telemetry.model_period import ModelPeriod

__all__ = ["DriftAlarm"]

_MAX_REASON = 1024


class DriftAlarm:
    def __init__(
        self, threshold: float, min_calls: int, interval_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.min_calls = min_calls
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}  # model sha256 → when it was last reported

    def check(self, period: ModelPeriod, scores: dict[str, Any]) -> str | None:
        if period.calls - period.errors - period.dropped < self.min_calls:
            return None
        drifted = self._drifted(scores)
        if not drifted:
            return None
        key, now = period.serving.model.sha256, self._clock()
        if key in self._last and now - self._last[key] < self.interval_s:
            return None
        self._last[key] = now
        return self._reason(period, drifted)

    def _drifted(self, scores: dict[str, Any]) -> list[tuple[float, str]]:
        found = [
            (p, f"input {name!r} feature {f}: PSI {p:.3f}, JS {j:.3f} bits")
            for name, features in scores.get("inputs", {}).items()
            for f, (p, j) in features.items()
            if p >= self.threshold
        ]
        found += [
            (p, f"output {name!r} class distribution: PSI {p:.3f}, JS {j:.3f} bits")
            for name, (p, j) in scores.get("outputs", {}).items()
            if p >= self.threshold
        ]
        return sorted(found, reverse=True)

    def _reason(self, period: ModelPeriod, drifted: list[tuple[float, str]]) -> str:
        head = (
            f"{period.serving.model.name} {period.serving.model.version}: {len(drifted)} signal(s) at or above "
            f"PSI {self.threshold:g} over {period.calls} calls: "
        )
        tail = "; live traffic no longer looks like the calibration data: collect samples and consider retraining"
        listed = "; ".join(text for _, text in drifted[:5]) + ("; …" if len(drifted) > 5 else "")
        return (head + listed + tail)[:_MAX_REASON]

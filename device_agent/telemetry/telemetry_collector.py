"""Predict calls → per-model telemetry periods, cheaply and thread-safely.

The predict path calls `record` with one plain tuple (see `Call`): a length check and a deque append,
no lock, no numpy. A background thread calls `drain` a few times a second, which folds everything
pending into the current period of the model that served it (`ModelPeriod.fold`: vectorised numpy over
the whole batch), and `cut` once per telemetry period, which closes the periods and starts new ones.
If the drain falls behind by `max_pending` calls, further calls are only counted (`dropped`), so memory
stays bounded and predict never waits.

`feedback(request_id, label)` scores a recent prediction (the last `remember` calls are kept) against
ground truth; the result lands in the accuracy of the period in which the feedback arrives.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from edgeml.device_agent.serving.serving_model import ServingModel
    from edgeml.device_agent.telemetry.model_period import Call, ModelPeriod

__all__ = ["TelemetryCollector"]


class TelemetryCollector:
    def __init__(
        self,
        alpha: float = 0.01,
        *,
        max_pending: int = 8192,
        remember: int = 4096,
        max_samples: int = 0,
        sample_max_bytes: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.alpha = alpha
        self.max_pending = max_pending
        self.remember = remember
        self._samples = (max_samples, sample_max_bytes)
        self._clock = clock
        self._pending: collections.deque[tuple[Any, ...]] = collections.deque()
        self._overflow: dict[ServingModel, int] = {}
        self._periods: dict[ServingModel, ModelPeriod] = {}
        self._recent: collections.OrderedDict[Any, tuple[ServingModel, dict[str, np.ndarray]]] = (
            collections.OrderedDict()
        )
        self._period_start = clock()
        self._lock = threading.Lock()

    # ---- the predict path -------------------------------------------------------------------------------

    def record(self, call: tuple[Any, ...]) -> None:
        """One finished call as (request_id, serving, latency_s, snapshots, outputs or None)."""
        if len(self._pending) < self.max_pending:
            self._pending.append(call)
        else:
            serving = call[1]
            self._overflow[serving] = self._overflow.get(serving, 0) + 1

    # ---- background -------------------------------------------------------------------------------------

    def drain(self) -> int:
        """Fold pending calls into their periods; returns how many were folded."""
        with self._lock:
            return self._drain_locked()

    def cut(self) -> list[ModelPeriod]:
        """Close the current periods (those that saw calls or feedback) and start new ones."""
        with self._lock:
            self._drain_locked()
            self._take_overflow()
            done = [p for p in self._periods.values() if p.calls or p.accuracy]
            self._periods = {}
            self._period_start = self._clock()
            return done

    def feedback(self, request_id: Any, label: Any, output: str | None = None) -> bool:
        """Score the prediction `request_id` against `label` (a class index, or one per row); False when the
        request is unknown or too old, or made by a model without a classifier output."""
        with self._lock:
            self._drain_locked()
            entry = self._recent.get(request_id)
            if entry is None:
                return False
            serving, top1 = entry
            name = output if output is not None else next(iter(top1), None)
            if name is None or name not in top1:
                return False
            self._period(serving).score(name, top1[name], label)
            return True

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ---- internals --------------------------------------------------------------------------------------

    def _drain_locked(self) -> int:
        if not self._pending:
            return 0
        # NOTE: imported here, not at the top: numpy (via model_period) loads with the first call served, so an
        # agent without a model does not carry it
        from edgeml.device_agent.telemetry.model_period import Call

        batch: dict[ServingModel, list[Call]] = {}
        folded = 0
        while self._pending:
            call = Call._make(self._pending.popleft())
            batch.setdefault(call.serving, []).append(call)
            folded += 1
        for serving, calls in batch.items():
            self._remember(self._period(serving).fold(calls), serving)
        return folded

    def _take_overflow(self) -> None:
        overflow, self._overflow = self._overflow, {}
        for serving, n in overflow.items():
            period = self._period(serving)
            period.calls += n
            period.dropped += n

    def _period(self, serving: ServingModel) -> ModelPeriod:
        period = self._periods.get(serving)
        if period is None:
            from edgeml.device_agent.telemetry.model_period import (
                ModelPeriod,  # NOTE: numpy with the first model (_drain_locked)
            )

            period = ModelPeriod(serving, self._period_start, self.alpha, *self._samples)
            self._periods[serving] = period
        return period

    def _remember(self, top1: dict[Any, dict[str, np.ndarray]], serving: ServingModel) -> None:
        for request_id, predicted in top1.items():
            if predicted:
                self._recent[request_id] = (serving, predicted)
                self._recent.move_to_end(request_id)
        while len(self._recent) > self.remember:
            self._recent.popitem(last=False)

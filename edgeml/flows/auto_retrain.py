"""`edgeml fleet serve --auto-retrain HOOK`: run the retraining flow for each request that opens, one at a time,
on a background thread beside the service. A request whose flow already ended (resolved, stopped as not
better, rollout aborted, waiting for approval) is left alone; one that failed is tried again after
`retry_after_s`, at most `max_attempts` times."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edgeml.flows.flow_ledger import FlowLedger
from edgeml.flows.retrain_settings import RetrainSettings

__all__ = ["AutoRetrain"]

log = logging.getLogger(__name__)
_ENDED = ("resolved", "stopped", "rollout_aborted", "awaiting_approval")


@dataclass
class AutoRetrain:
    settings: RetrainSettings
    fleet: object  # the serving Fleet (its retraining requests are read from here)
    leads: Callable[[], bool] = lambda: True  # NOTE: of several --share-group instances, only the leader retrains
    poll_s: float = 5.0
    retry_after_s: float = 300.0
    max_attempts: int = 3
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> AutoRetrain:
        self._thread = threading.Thread(target=self._run, name="edgeml-auto-retrain", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)  # NOTE: a flow mid-way is resumed by the next serve or `retrain run`

    def due(self) -> list[str]:
        """Open requests whose flow has not ended and is not waiting out a retry delay."""
        ledger = FlowLedger(self.settings.ledger_path())
        runs = {r["request_id"]: r for r in ledger.runs()}
        out = []
        for req in self.fleet.retraining.list():
            run = runs.get(req["id"])
            if req["state"] != "open" or (run and run["state"] in _ENDED):
                continue
            if (
                run
                and run["state"] == "failed"
                and (run["attempts"] >= self.max_attempts or time.time() - run["updated_at"] < self.retry_after_s)
            ):
                continue
            out.append(req["id"])
        return out

    def _run(self) -> None:
        from edgeml.flows import run_retrain

        while not self._stop.wait(self.poll_s):
            for request_id in self.due() if self.leads() else ():
                log.info("retraining request %s: running the flow", request_id)
                try:
                    run = run_retrain(request_id, self.settings)
                    log.info("retraining request %s: %s (%s)", request_id, run.get("state"), run.get("reason"))
                except Exception:
                    log.exception("retraining request %s: the flow failed (recorded; retried later)", request_id)
                if self._stop.is_set():
                    return

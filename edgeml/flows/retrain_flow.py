"""`retrain_and_roll_out(request_id)`: a retraining request → a better model on every device, or a recorded
reason why not. A Prefect flow (the optional `edgeml[prefect]` extra; Prefect's ephemeral local API unless
PREFECT_API_URL names a server):

    export evidence → train (the user's hook) → reserve version → compile with the replaced release's recipe
    → evaluate against production (drifted + original data) → [stop: not better] → track (MLflow, if asked)
    → [approval] → publish → rollout (canary, waves, gates) → wait → resolve the request → registry aliases

Every step is a task; its result goes to the ledger (flow_ledger.py) before the next starts, and a re-run
skips finished steps, so killing the flow anywhere and running it again neither duplicates a release nor a
rollout. Steps that talk to a database or a tracking server retry; training and compiling do not (the same
input fails the same way).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from edgeml.flows import retrain_steps as steps
from edgeml.flows.flow_ledger import FlowLedger
from edgeml.flows.retrain_settings import RetrainSettings

__all__ = ["retrain_and_roll_out"]

log = logging.getLogger(__name__)
_RETRY = {"retries": 3, "retry_delay_seconds": 2}


def _task(fn: Callable, **retry: Any):
    return task(fn, name=fn.__name__.replace("_", "-"), cache_policy=NO_CACHE, **retry)


export_evidence = _task(steps.export_evidence, **_RETRY)
train_model = _task(steps.train_model)
reserve_version = _task(steps.reserve_version, **_RETRY)
compile_release = _task(steps.compile_release)
evaluate_release = _task(steps.evaluate_release)
track_release = _task(steps.track_release, **_RETRY)
publish_release = _task(steps.publish_release, **_RETRY)
start_rollout = _task(steps.start_rollout, **_RETRY)
wait_for_rollout = _task(steps.wait_for_rollout)
resolve_request = _task(steps.resolve_request, **_RETRY)
mirror_aliases = _task(steps.mirror_aliases, **_RETRY)


@flow(name="retrain-and-roll-out", validate_parameters=False, log_prints=False)
def retrain_and_roll_out(request_id: str, settings: RetrainSettings) -> dict[str, Any]:
    """Run (or resume) the loop for `request_id`; returns the ledger's record of it (state, reason, steps)."""
    ledger = FlowLedger(settings.ledger_path())
    ledger.begin(request_id)
    try:
        _run(ledger, request_id, settings)
    except BaseException as exc:
        ledger.set_state(request_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    return ledger.run(request_id) or {}


def _run(ledger: FlowLedger, rid: str, s: RetrainSettings) -> None:
    def once(step: str, fn, *args):
        done = ledger.done(rid, step)
        return done if done is not None else ledger.record(rid, step, fn(*args))

    evidence = once("export", export_evidence, s, rid)
    trained = once("train", train_model, s, rid, evidence)
    reserved = once("version", reserve_version, s, evidence)
    compiled = once("compile", compile_release, s, rid, evidence, trained, reserved)
    evaluation = once("evaluate", evaluate_release, s, evidence, trained, compiled)
    once("track", track_release, s, compiled, evaluation)
    if not evaluation["better"]:
        ledger.set_state(rid, "stopped", f"not rolled out: {evaluation['reason']}")
        return
    if s.require_approval and ledger.done(rid, "approval") is None:
        ledger.set_state(rid, "awaiting_approval", f"approve with `edgeml fleet retrain approve {rid}`, then re-run")
        return
    published = once("publish", publish_release, s, compiled)
    rollout = once("rollout", start_rollout, s, published)
    ledger.set_state(rid, "rolling_out", f"rollout {rollout['rollout_id']} of {published['release']}")
    outcome = wait_for_rollout(s, rollout)
    if outcome["state"] == "aborted":
        ledger.record(rid, "rollout_outcome", outcome)
        ledger.set_state(rid, "rollout_aborted", f"rollout {rollout['rollout_id']} aborted: {outcome['reason']}")
        mirror_aliases(s)
        return
    if outcome["state"] != "completed":
        ledger.set_state(
            rid, "rolling_out", f"rollout {rollout['rollout_id']} still {outcome['state']}; re-run to wait"
        )
        return
    ledger.record(rid, "rollout_outcome", outcome)
    once("resolve", resolve_request, s, rid)
    once("aliases", mirror_aliases, s)
    ledger.set_state(rid, "resolved", f"{published['release']} reached every device of rollout {rollout['rollout_id']}")

"""The step each in-progress state of the update table runs: the persisted state in → the event that ends
the step (with what it learnt) out, or None while the step waits on the fleet, or InstallFailure.

    accepted     decide(): desired state for another target → refused; the artifact already serves → committed;
                 still held in the other slot → verifying a copy of it; a local file → verifying it; else fetch
    downloading  download(): hand the update to the downloader (the update worker); `fetched` comes later
    verifying    verify_artifact(): signature against the pinned key, every file's sha256 and size, manifest
                 schema; then admission: this device's target, an installed runtime, a release above the
                 committed one
    installing   copy_into_slot(): the artifact is copied into the inactive slot (temp folder, fsync,
                 re-verify, rename)
    self_test    prove(): the candidate is loaded and must reproduce its recorded outputs within its budget

Steps change nothing but the files their state owns (the candidate slot, the download); every decision
they take goes back to the installer as an event, which persists it before the next step runs.
"""

from __future__ import annotations

import base64
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.artifact import read_manifest, verify
from edgeml.device_agent.update.admission import check_admission
from edgeml.device_agent.update.agent_state import AgentState, SlotRecord, UpdateRecord
from edgeml.device_agent.update.install_failure import InstallFailure
from edgeml.device_agent.update.lifecycle import Event, State
from edgeml.device_agent.update.self_test import SelfTestPolicy, SelfTestReport, run_self_test
from edgeml.device_agent.update.slots import Slots
from edgeml.errors import VerificationError
from edgeml.protocol import ArtifactRef, DesiredState, ProtocolError, SignedDesiredState, decode, verify_desired_state

__all__ = ["STEPS", "Fetch", "Step", "StepContext", "desired_of"]

log = logging.getLogger(__name__)

Fetch = Callable[[DesiredState], None]  # start (or resume) downloading this update; must not block


class Step(NamedTuple):
    event: Event
    changes: dict[str, Any] = {}  # noqa: RUF012 - never mutated: persisted with the next state
    note: str = ""  # said in the event the next state reports ("already active", "reused from slot a")


@dataclass
class StepContext:
    """What a step may read and use: the persisted state and this device."""

    state: AgentState
    key: Ed25519PublicKey
    slots: Slots
    target: str
    runtimes: frozenset[str]
    policy: SelfTestPolicy
    threads: int
    fetch: Fetch | None
    report: SelfTestReport | None = None  # set by prove()

    @property
    def update(self) -> UpdateRecord:
        assert self.state.update is not None, "a step ran without an update record"
        return self.state.update


def desired_of(update: UpdateRecord, key: Ed25519PublicKey) -> DesiredState:
    """The signed desired state the update came from, its signature checked again; InstallFailure if it fails."""
    try:
        signed = decode(SignedDesiredState.KIND, base64.b64decode(update.desired or ""))
        return verify_desired_state(signed, key)  # type: ignore[arg-type]
    except (ProtocolError, ValueError) as exc:
        code, reason = (exc.code, exc.reason) if isinstance(exc, ProtocolError) else ("malformed", str(exc))
        raise InstallFailure(code, f"the saved desired state no longer verifies: {reason}", "send it again") from exc


# ---- accepted ---------------------------------------------------------------------------------------------


def decide(ctx: StepContext) -> Step:
    update = ctx.update
    if update.desired is None:  # a local artifact: install() was called with a path
        if not Path(str(update.source)).exists():
            raise InstallFailure("not_found", f"artifact {update.source} does not exist", "send the update again")
        return Step(Event.FETCHED)
    a = desired_of(update, ctx.key).artifact
    if a.target != ctx.target:
        raise InstallFailure("wrong_target", f"{a.name} {a.version} is built for target {a.target!r}; this device is "
                             f"{ctx.target!r}", f"compile it for {ctx.target}")  # fmt: skip
    if (active := _already_active(ctx.state, a)) is not None:
        return active
    if (copy := _copy_of_other_slot(ctx, a)) is not None:
        return copy
    return Step(Event.FETCH)


def _already_active(state: AgentState, a: ArtifactRef) -> Step | None:
    record = state.slots.get(state.active) if state.active else None
    if record is None or state.active is None:
        return None
    note = f"{a.name} {a.version} is already active"
    if record.artifact is not None:
        return Step(Event.ALREADY_ACTIVE, note=note) if record.artifact == a.sha256 else None
    # installed before this agent managed it (from a local file): the signed name and release decide
    if (record.name, record.version, record.release) != (a.name, a.version, a.release):
        return None
    named = replace(record, artifact=a.sha256)
    return Step(Event.ALREADY_ACTIVE, {"slots": {**state.slots, state.active: named}}, note)


def _copy_of_other_slot(ctx: StepContext, a: ArtifactRef) -> Step | None:
    """A fleet revert to the artifact still held in the inactive slot: install from a copy of it, no download."""
    other = ctx.state.inactive
    record = ctx.state.slots.get(other)
    if record is None or record.artifact != a.sha256:
        return None
    copy = ctx.slots.root.parent / "downloads" / f"{a.sha256}.slot"
    shutil.rmtree(copy, ignore_errors=True)
    try:
        shutil.copytree(ctx.slots.path(other), copy)
    except OSError as exc:
        log.warning("cannot reuse slot %s (%s); downloading instead", other, exc)
        shutil.rmtree(copy, ignore_errors=True)
        return None
    return Step(Event.FETCHED, {"update": replace(ctx.update, source=str(copy))}, f"reused from slot {other}")


# ---- downloading ------------------------------------------------------------------------------------------


def download(ctx: StepContext) -> None:
    if ctx.fetch is None:
        raise InstallFailure("no_downloader", "this installer has no downloader for an update sent by the fleet",
                             "run the update through the Agent (its update worker downloads)")  # fmt: skip
    ctx.fetch(desired_of(ctx.update, ctx.key))


# ---- verifying --------------------------------------------------------------------------------------------


def verify_artifact(ctx: StepContext) -> Step:
    update = ctx.update
    try:
        manifest = verify(str(update.source), ctx.key, scratch=ctx.slots.scratch()).manifest
    except VerificationError as exc:
        raise InstallFailure.from_verification(exc) from exc
    except OSError as exc:
        raise InstallFailure("not_found", f"cannot read artifact {update.source}: {exc}") from exc
    record = SlotRecord.from_manifest(manifest, update.artifact)
    verified = replace(update, digest=record.digest, name=record.name, version=record.version, release=record.release)
    state = ctx.state
    active = state.slots.get(state.active) if state.active else None
    try:
        check_admission(manifest, ctx.target, ctx.runtimes, state.committed_release, update.allow_rollback,
                        active.release if active else None, update.min_release)  # fmt: skip
    except InstallFailure as failure:
        failure.update = verified  # so the refusal names what was refused
        raise
    # NOTE: the candidate slot's record is cleared in the same write that enters `installing`, so whatever
    # the copy leaves behind is never trusted.
    return Step(Event.VERIFIED, {"update": verified, "slots": {**state.slots, update.slot: None}})


# ---- installing -------------------------------------------------------------------------------------------


def copy_into_slot(ctx: StepContext) -> Step:
    update, state = ctx.update, ctx.state
    if update.slot == state.active:
        raise AssertionError(f"refusing to write the active slot {update.slot}: this is a bug in the installer")
    try:
        manifest = ctx.slots.stage(update.slot, str(update.source), str(update.digest), ctx.key)
    except VerificationError as exc:
        raise InstallFailure.from_verification(exc) from exc
    except OSError as exc:
        raise InstallFailure.from_copy_error(exc, update.describe(), update.slot) from exc
    record = SlotRecord.from_manifest(manifest, update.artifact)
    return Step(Event.COPIED, {"slots": {**state.slots, update.slot: record}})


# ---- self_test --------------------------------------------------------------------------------------------


def prove(ctx: StepContext) -> Step:
    update = ctx.update
    folder = ctx.slots.path(update.slot)
    ctx.report = run_self_test(folder, read_manifest(folder), ctx.policy, ctx.threads)
    highest = max(ctx.state.committed_release or 0, update.release or 0)
    return Step(Event.PASSED, {"active": update.slot, "committed_release": highest})


# The table's steps: the installer persists a state, then calls its step (final states only tidy up).
STEPS: dict[State, Callable[[StepContext], Step | None]] = {
    State.ACCEPTED: decide,
    State.DOWNLOADING: download,
    State.VERIFYING: verify_artifact,
    State.INSTALLING: copy_into_slot,
    State.SELF_TEST: prove,
}

"""The update lifecycle table, driven: an event → the next state persisted → that state's step run → its
event → … until the update waits on the fleet (downloading) or ends committed, rolled back or refused.

    install(path)           a local artifact: accepted → verifying → installing → self_test → committed
    accept(payload, desired)  a desired state the guard let through (the update worker calls it)
    fetched(path) / fail(…)   the download finished / gave up (the update worker again)
    resume()                at start-up: migrate old state files, end an update a power cut interrupted
                            (`interrupted`), tidy the slots, check the active slot still verifies
    carry_on()              after resume(): go on with an update that waits on the fleet (accepted, downloading)

Every new state is persisted *before* its step runs (lifecycle.py has the table, update_steps.py the steps),
in the one state file. A failure before `installing` ends `refused` (nothing changed); from `installing` on
it ends `rolled_back` and the candidate slot is wiped. The active slot is never written, so the running
model keeps serving whatever happens.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.artifact import load_public_key, read_manifest, verify
from edgeml.device_agent.update.agent_state import SLOT_NAMES, AgentState, Failure, UpdateRecord, manifest_digest
from edgeml.device_agent.update.crash_hook import crash_if_asked
from edgeml.device_agent.update.install_failure import InstallFailure
from edgeml.device_agent.update.install_result import InstallResult
from edgeml.device_agent.update.lifecycle import (
    FINAL,
    IN_PROGRESS,
    RESUMABLE,
    TRANSITIONS,
    Event,
    LifecycleError,
    State,
    next_state,
)
from edgeml.device_agent.update.rebuild_state import rebuild_state
from edgeml.device_agent.update.self_test import SelfTestPolicy, run_self_test
from edgeml.device_agent.update.slots import Slots
from edgeml.device_agent.update.state_store import StateFileError, StateStore
from edgeml.device_agent.update.update_steps import STEPS, Fetch, StepContext
from edgeml.errors import VerificationError
from edgeml.protocol import DesiredState

__all__ = ["ActiveModel", "EventCallback", "Installer"]

log = logging.getLogger(__name__)

# on_event(kind, **fields): kind is the lifecycle state entered, or a recovery event (state_rebuilt, ...)
EventCallback = Callable[..., None]


class ActiveModel(NamedTuple):
    manifest: dict[str, Any]
    model_path: Path


class Installer:
    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        public_key: Ed25519PublicKey | str | os.PathLike[str],
        device_target: str,
        runtimes: Iterable[str],
        *,
        on_event: EventCallback | None = None,
        self_test: SelfTestPolicy | None = None,
        threads: int = 1,
        fetch: Fetch | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.device_target = device_target
        self.runtimes = frozenset(runtimes)
        self.fetch = fetch  # the downloader for updates the fleet sends (the agent's update worker)
        self._key = public_key if isinstance(public_key, Ed25519PublicKey) else load_public_key(public_key)
        self._store = StateStore(state_dir)
        self._slots = Slots(state_dir)
        self._on_event = on_event
        self._policy = self_test or SelfTestPolicy()
        self._threads = threads
        self._state = AgentState()  # mirror of the last state persisted by this object
        self._reported: tuple[State, str] = (State.IDLE, "")  # the previous state and note of the last transition

    # ---- reading ----------------------------------------------------------------------------------------

    def state(self) -> AgentState:
        """The persisted state (a fresh one on a new device); StateFileError if it is corrupt (run resume())."""
        return self._store.load() or AgentState()

    def active_model(self) -> ActiveModel | None:
        """The committed model that serves now: its manifest and model file, or None before the first commit."""
        state = self.state()
        if state.active is None:
            return None
        folder = self._slots.path(state.active)
        manifest = read_manifest(folder)
        return ActiveModel(manifest, folder / manifest["target"]["model_file"])

    # ---- events in --------------------------------------------------------------------------------------

    def install(self, artifact_path: str | os.PathLike[str], allow_rollback: bool = False) -> InstallResult:
        """Install the local artifact at `artifact_path`; every failure ends refused or rolled back, with a code."""
        result = self._start(UpdateRecord("", os.fspath(artifact_path), allow_rollback), 0)
        assert result is not None, "a local install never waits"
        return result

    def accept(self, payload: bytes, desired: DesiredState) -> InstallResult | None:
        """Take on a desired state the guard accepted (`payload`: its signed bytes); its sequence is persisted in
        the same write. The result when the update already ended, None while it downloads."""
        a = desired.artifact
        update = UpdateRecord("", None, desired.allow_rollback, desired=base64.b64encode(payload).decode(),
                              artifact=a.sha256, rollout_id=desired.rollout_id, name=a.name, version=a.version,
                              release=a.release, min_release=desired.min_release)  # fmt: skip
        return self._start(update, desired.sequence)

    def fetched(self, artifact: str, path: str | os.PathLike[str], note: str = "") -> InstallResult | None:
        """The download of `artifact` (its sha256) is complete at `path`: verify, install, self-test, commit."""
        with self._store.lock():
            self._reload_for(artifact)
            update = replace(self._update, source=os.fspath(path), received=None)
            return self._fire(Event.FETCHED, note, update=update)

    def fail(self, artifact: str, failure: InstallFailure) -> InstallResult | None:
        """The download of `artifact` gave up (`failure` says why): the update ends refused."""
        with self._store.lock():
            self._reload_for(artifact)
            return self._fail(failure)

    def checkpoint(self, artifact: str, received: str | None) -> None:
        """Persist the download's progress (base64 bitmap of the chunks safely on disk) with the update."""
        with self._store.lock():
            self._reload_for(artifact)
            self._state = self._store.save(replace(self._state, update=replace(self._update, received=received)))

    def resume(self) -> AgentState:
        """On start-up: migrate old files, end an interrupted update, tidy the slots, check the active slot."""
        with self._store.lock():
            self._store.remove_stale_temp()
            self._state = self._load_or_rebuild()
            self._store.migrate(self._state)
            state = self._state
            if state.lifecycle in IN_PROGRESS and not (state.lifecycle in RESUMABLE and self._update.desired):
                self._fail(InstallFailure.interrupted(self._update.describe(), state.lifecycle.value))
            else:
                self._tidy()
            self._check_active()
            return self._state

    def carry_on(self) -> InstallResult | None:
        """Run the step of the state a restart left waiting (accepted, downloading); None if there is none."""
        with self._store.lock():
            self._state = self.state()
            if self._state.lifecycle not in RESUMABLE:
                return None
            log.info("carrying on with the update to %s (%s)", self._update.describe(), self._state.lifecycle.value)
            return self._proceed()

    # ---- the table, driven ------------------------------------------------------------------------------

    def _start(self, update: UpdateRecord, sequence: int) -> InstallResult | None:
        with self._store.lock():
            self._state = self.state()
            if (self._state.lifecycle, Event.ACCEPT) not in TRANSITIONS:
                raise LifecycleError(
                    f"an update is already in progress in {self.state_dir} ({self._state.lifecycle.value})",
                    "call Installer.resume() at start-up before installing",
                )
            update = replace(update, slot=self._state.inactive)
            changes: dict[str, Any] = {"update": update}
            if sequence:
                changes["desired_sequence"] = sequence
            return self._fire(Event.ACCEPT, **changes)

    def _fire(self, event: Event, note: str = "", **changes: Any) -> InstallResult | None:
        self._advance(event, note, **changes)
        return self._proceed()

    def _proceed(self) -> InstallResult | None:
        """Run steps from the current state until one waits (None) or the update ends (its result)."""
        report = None
        while self._state.lifecycle not in FINAL:
            context = self._context()
            try:
                step = STEPS[self._state.lifecycle](context)
            except InstallFailure as failure:
                return self._fail(failure)
            except BaseException as exc:
                self._fail_after_bug(exc)
                raise
            if step is None:
                return None
            report = context.report or report
            self._advance(step.event, step.note, **step.changes)
        return self._finish(report)

    def _fail(self, failure: InstallFailure) -> InstallResult:
        update = failure.update or self._update
        handed_over = self._state.lifecycle in (State.INSTALLING, State.SELF_TEST)  # the slot holds the candidate
        log.warning("%s %s: [%s] %s", "rolling back" if handed_over else "refused", update.describe(), failure.code,
                    failure.message)  # fmt: skip
        changes: dict[str, Any] = {
            "update": update,
            "last_failure": Failure(failure.code, failure.message, failure.hint, update.release),
        }
        if handed_over:  # NOTE: drop the candidate's record so tidy() wipes it
            changes["slots"] = {**self._state.slots, update.slot: None}
        self._advance(Event.FAILED, "", **changes)
        return self._finish(None)

    def _fail_after_bug(self, exc: BaseException) -> None:
        if self._state.lifecycle not in IN_PROGRESS:
            return
        log.exception("the update to %s hit an unexpected error; ending it", self._update.describe())
        try:
            self._fail(InstallFailure("internal_error", f"unexpected {type(exc).__name__}: {exc}", "see the log"))
        except Exception:
            log.exception("ending the update failed too; resume() at the next start finishes it")

    def _finish(self, report: Any) -> InstallResult:
        """The final state's step: wipe what the state does not vouch for; report it; the update's result."""
        self._tidy()
        self._report()
        state, update = self._state, self._update
        failure = state.last_failure if state.lifecycle is not State.COMMITTED else None
        if failure is None:
            log.info("committed %s in slot %s", update.describe(), state.active)
        return InstallResult(
            state.lifecycle, state.active, update.name, update.version, update.release,
            code=failure.code if failure else None, reason=failure.reason if failure else None,
            hint=failure.hint if failure else None, self_test=report,
        )  # fmt: skip

    def _advance(self, event: Event, note: str, **changes: Any) -> None:
        """Persist the next state (and `changes`) before its step runs; report it (a final state once its step,
        the tidy-up, has run: see _finish)."""
        previous = self._state.lifecycle
        new = replace(self._state, lifecycle=next_state(previous, event), **changes)
        self._state = self._store.save(new)
        crash_if_asked(new.lifecycle)
        self._reported = (previous, note)
        if new.lifecycle not in FINAL:
            self._report()

    def _report(self) -> None:
        previous, note = self._reported
        self._emit(self._state.lifecycle.value, previous=previous.value, **_event_fields(self._state, note))

    def _context(self) -> StepContext:
        return StepContext(self._state, self._key, self._slots, self.device_target, self.runtimes, self._policy,
                           self._threads, self.fetch)  # fmt: skip

    @property
    def _update(self) -> UpdateRecord:
        assert self._state.update is not None, "a step ran without an update record"
        return self._state.update

    def _reload_for(self, artifact: str) -> None:
        self._state = self.state()
        if self._state.lifecycle is not State.DOWNLOADING or self._update.artifact != artifact:
            raise LifecycleError(
                f"no download of {artifact[:12]}… is under way (the update is {self._state.lifecycle.value})",
                "a newer update replaced it; nothing to do",
            )

    def _emit(self, kind: str, **fields: Any) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, **fields)
        except Exception:
            log.exception("the on_event callback failed on %r; the update goes on", kind)

    # ---- recovery ---------------------------------------------------------------------------------------

    def _tidy(self) -> None:
        """Remove what the state does not vouch for: unrecorded slots, and downloads no update waits on."""
        self._slots.tidy(keep=[slot for slot, record in self._state.slots.items() if record is not None])
        state, downloads = self._state, self.state_dir / "downloads"
        waiting = state.update.artifact if state.lifecycle in RESUMABLE and state.update else None
        for leftover in sorted(downloads.iterdir()) if downloads.is_dir() else []:
            if waiting is None or not leftover.name.startswith(waiting):
                shutil.rmtree(leftover) if leftover.is_dir() and not leftover.is_symlink() else leftover.unlink()

    def _load_or_rebuild(self) -> AgentState:
        try:
            state = self._store.load()
        except StateFileError as exc:
            salvaged = self._store.salvage()
            self._store.set_aside()
            return self._rebuild(exc.message, salvaged)
        if state is None and any(self._slots.path(s).exists() for s in SLOT_NAMES):
            return self._rebuild(f"{self._store.path} is missing but the slots hold artifacts", self._store.salvage())
        return state or AgentState()

    def _rebuild(self, why: str, salvaged: tuple[int, dict[str, str]]) -> AgentState:
        state = rebuild_state(self._slots, self._key, self.device_target, self._prove, why, salvaged)
        self._state = self._store.save(state)
        self._emit("state_rebuilt", reason=state.last_failure.reason if state.last_failure else why,
                   active=state.active)  # fmt: skip
        return state

    def _prove(self, folder: Path, manifest: dict[str, Any]) -> None:
        run_self_test(folder, manifest, self._policy, self._threads)

    def _check_active(self) -> None:
        active = self._state.active
        if active is None or self._slot_verifies(active):
            return
        other = self._state.inactive
        fallback = other if self._slot_verifies(other) else None
        reason = f"active slot {active} no longer verifies; " + (
            f"falling back to slot {other}" if fallback else "no verified model is left: waiting for an update"
        )
        log.error("%s", reason)
        failure = Failure("active_corrupt", reason, "check this device's storage")
        self._state = self._store.save(
            replace(self._state.with_slot(active, None), active=fallback, last_failure=failure)
        )
        self._tidy()
        self._emit("active_fallback", reason=reason, active=fallback)

    def _slot_verifies(self, slot: str) -> bool:
        record = self._state.slots[slot]
        if record is None:
            return False
        try:
            return manifest_digest(verify(self._slots.path(slot), self._key).manifest) == record.digest
        except (VerificationError, OSError) as exc:
            log.error("slot %s fails verification: %s", slot, exc)
            return False


def _event_fields(state: AgentState, note: str) -> dict[str, Any]:
    update, failure = state.update, state.last_failure
    fields: dict[str, Any] = {"active_slot": state.active}
    if update is not None:
        fields |= {"name": update.name, "version": update.version, "release": update.release, "slot": update.slot,
                   "artifact": update.artifact, "rollout_id": update.rollout_id}  # fmt: skip
    if state.lifecycle in (State.ROLLED_BACK, State.REFUSED) and failure is not None:
        fields |= {"code": failure.code, "reason": failure.reason}
    elif note:
        fields["reason"] = note
    return fields

"""An artifact on disk → installed in the inactive slot, proven by its self-test, then committed; or rolled back.

Each step runs only after its state is persisted (lifecycle.py has the table):

    downloading  the artifact (folder or .tar) is on the device
    verifying    signature against the pinned key, every file's sha256 and size, manifest schema; then
                 admission: this device's target, an installed runtime, a release above the committed one
    installing   the artifact is copied into the inactive slot (temp folder, fsync, re-verify, rename)
    self_test    the candidate is loaded and must reproduce its recorded outputs within its latency budget
    committed    one atomic state write makes the candidate slot the active one

Any failure persists `rolled_back` with a code and a reason, then wipes the candidate slot; the active
slot is never written, so the running model keeps serving. `resume()` on start-up rolls back an update
that a power cut interrupted, tidies leftovers, and checks the active slot still verifies.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.artifact import load_public_key, read_manifest, verify
from edgeml.device_agent.admission import check_admission
from edgeml.device_agent.agent_state import SLOT_NAMES, AgentState, Failure, SlotRecord, UpdateRecord, manifest_digest
from edgeml.device_agent.crash_hook import crash_if_asked
from edgeml.device_agent.install_failure import InstallFailure
from edgeml.device_agent.install_result import InstallResult
from edgeml.device_agent.lifecycle import IN_PROGRESS, Event, LifecycleError, State, next_state
from edgeml.device_agent.rebuild_state import rebuild_state
from edgeml.device_agent.self_test import SelfTestPolicy, SelfTestReport, run_self_test
from edgeml.device_agent.slots import Slots
from edgeml.device_agent.state_store import StateFileError, StateStore
from edgeml.errors import VerificationError

__all__ = ["ActiveModel", "EventCallback", "Installer"]

log = logging.getLogger(__name__)

EventCallback = Callable[..., None]  # on_event(kind, **fields); kind is a lifecycle state or a recovery event


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
    ) -> None:
        self.state_dir = Path(state_dir)
        self.device_target = device_target
        self.runtimes = frozenset(runtimes)
        self._key = public_key if isinstance(public_key, Ed25519PublicKey) else load_public_key(public_key)
        self._store = StateStore(state_dir)
        self._slots = Slots(state_dir)
        self._on_event = on_event
        self._policy = self_test or SelfTestPolicy()
        self._threads = threads
        self._state = AgentState()  # mirror of the last state persisted by this object

    # ---- public API -------------------------------------------------------------------------------------

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

    def install(self, artifact_path: str | os.PathLike[str], allow_rollback: bool = False) -> InstallResult:
        """Install the artifact at `artifact_path`; every failure ends rolled back with a code and a reason."""
        with self._store.lock():
            self._state = self.state()
            if self._state.lifecycle in IN_PROGRESS:
                raise LifecycleError(
                    f"an install is already in progress in {self.state_dir} ({self._state.lifecycle.value})",
                    "call Installer.resume() at start-up before installing",
                )
            if self._state.lifecycle is not State.IDLE:
                self._advance(Event.RESET, update=None)
            update = UpdateRecord(os.fspath(artifact_path), self._state.inactive, allow_rollback)
            self._advance(Event.START, update=update)
            return self._run_steps()

    def resume(self) -> AgentState:
        """On start-up: roll back an interrupted install, tidy the slots, make sure the active slot verifies."""
        with self._store.lock():
            self._store.remove_stale_temp()
            self._state = self._load_or_rebuild()
            if self._state.lifecycle in IN_PROGRESS:
                self._roll_back(InstallFailure.interrupted(self._update.describe(), self._state.lifecycle.value))
            else:
                self._tidy()
            self._check_active()
            return self._state

    # ---- the steps --------------------------------------------------------------------------------------

    def _run_steps(self) -> InstallResult:
        try:
            self._download()
            self._advance(Event.FETCHED)
            manifest = self._verify()
            # NOTE: the candidate slot's record is cleared in the same write that enters `installing`, so
            # whatever the copy leaves behind is never trusted.
            slot = self._update.slot
            self._advance(Event.VERIFIED, slots=self._slots_with(slot))
            self._copy(manifest)
            self._advance(Event.COPIED, slots=self._slots_with(slot, SlotRecord.from_manifest(manifest)))
            report = run_self_test(self._slots.path(self._update.slot), manifest, self._policy, self._threads)
            return self._commit(report)
        except InstallFailure as failure:
            return self._roll_back(failure)
        except BaseException as exc:
            self._roll_back_after_bug(exc)
            raise

    def _roll_back_after_bug(self, exc: BaseException) -> None:
        if self._state.lifecycle not in IN_PROGRESS:
            return
        log.exception("install of %s hit an unexpected error; rolling back", self._update.source)
        try:
            self._roll_back(InstallFailure("internal_error", f"unexpected {type(exc).__name__}: {exc}", "see the log"))
        except Exception:
            log.exception("the rollback failed too; resume() at the next start finishes it")

    def _slots_with(self, slot: str, record: SlotRecord | None = None) -> dict[str, SlotRecord | None]:
        return {**self._state.slots, slot: record}

    @property
    def _update(self) -> UpdateRecord:
        assert self._state.update is not None, "a step ran without an update record"
        return self._state.update

    def _download(self) -> None:
        # NOTE: the MQTT side assembles chunks into a file before calling install(); here it only has to exist.
        if not Path(self._update.source).exists():
            raise InstallFailure("not_found", f"artifact {self._update.source} does not exist", "send the update again")

    def _verify(self) -> dict[str, Any]:
        try:
            manifest = verify(self._update.source, self._key, scratch=self._slots.scratch()).manifest
        except VerificationError as exc:
            raise InstallFailure.from_verification(exc) from exc
        except OSError as exc:
            raise InstallFailure("not_found", f"cannot read artifact {self._update.source}: {exc}") from exc
        # what it is, recorded with the next transition (installing or rolled_back) so both can name it
        self._state = replace(self._state, update=_with_manifest(self._update, manifest))
        state = self._state
        active = state.slots.get(state.active) if state.active else None
        check_admission(manifest, self.device_target, self.runtimes, state.committed_release,
                        self._update.allow_rollback, active.release if active else None)  # fmt: skip
        return manifest

    def _copy(self, manifest: dict[str, Any]) -> None:
        slot = self._update.slot
        if slot == self._state.active:
            raise LifecycleError(f"refusing to write the active slot {slot}", "this is a bug in the installer")
        try:
            self._slots.stage(slot, self._update.source, manifest, self._key)
        except VerificationError as exc:
            raise InstallFailure.from_verification(exc) from exc
        except OSError as exc:
            raise InstallFailure.from_copy_error(exc, self._update.describe(), self._update.slot) from exc

    def _commit(self, report: SelfTestReport) -> InstallResult:
        update = self._update
        highest = max(self._state.committed_release or 0, update.release or 0)
        self._advance(Event.PASSED, active=update.slot, committed_release=highest)
        self._tidy()
        log.info("committed %s in slot %s", update.describe(), update.slot)
        return InstallResult(
            State.COMMITTED, update.slot, update.name, update.version, update.release, self_test=report
        )

    def _roll_back(self, failure: InstallFailure) -> InstallResult:
        update = self._update
        record = Failure(failure.code, failure.message, failure.hint, update.release)
        # from `installing` on, the target slot belongs to the candidate: drop its record so tidy() wipes it
        handed_over = self._state.lifecycle in (State.INSTALLING, State.SELF_TEST)
        what = "rolling back" if handed_over else "refused"  # NOTE: before `installing` nothing was changed
        log.warning("%s %s: [%s] %s", what, update.describe(), failure.code, failure.message)
        slots = self._slots_with(update.slot) if handed_over else self._state.slots
        self._advance(Event.FAILED, last_failure=record, slots=slots)
        self._tidy()
        return InstallResult(
            State.ROLLED_BACK, self._state.active, update.name, update.version, update.release,
            code=failure.code, reason=failure.message, hint=failure.hint,
        )  # fmt: skip

    # ---- persistence, events, recovery ------------------------------------------------------------------

    def _advance(self, event: Event, **changes: Any) -> None:
        """Persist the next state (and `changes`) before its step runs; then report it."""
        previous = self._state.lifecycle
        new = replace(self._state, lifecycle=next_state(previous, event), **changes)
        self._state = self._store.save(new)
        crash_if_asked(new.lifecycle)
        self._emit(new.lifecycle.value, previous=previous.value, **_event_fields(new))

    def _emit(self, kind: str, **fields: Any) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, **fields)
        except Exception:
            log.exception("the on_event callback failed on %r; the install goes on", kind)

    def _tidy(self) -> None:
        self._slots.tidy(keep=[slot for slot, record in self._state.slots.items() if record is not None])

    def _load_or_rebuild(self) -> AgentState:
        try:
            state = self._store.load()
        except StateFileError as exc:
            self._store.set_aside()
            return self._rebuild(exc.message)
        if state is None and any(self._slots.path(s).exists() for s in SLOT_NAMES):
            return self._rebuild(f"{self._store.path} is missing but the slots hold artifacts")
        return state or AgentState()

    def _rebuild(self, why: str) -> AgentState:
        state = rebuild_state(self._slots, self._key, self.device_target, self._prove, why)
        self._state = self._store.save(state)
        self._emit("state_rebuilt", reason=why, active=state.active)
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


def _with_manifest(update: UpdateRecord, manifest: dict[str, Any]) -> UpdateRecord:
    record = SlotRecord.from_manifest(manifest)
    return replace(update, digest=record.digest, name=record.name, version=record.version, release=record.release)


def _event_fields(state: AgentState) -> dict[str, Any]:
    update, failure = state.update, state.last_failure
    fields: dict[str, Any] = {"active_slot": state.active}
    if update is not None:
        fields |= {"name": update.name, "version": update.version, "release": update.release, "slot": update.slot}
    if state.lifecycle is State.ROLLED_BACK and failure is not None:
        fields |= {"code": failure.code, "reason": failure.reason}
    return fields

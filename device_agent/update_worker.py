"""Desired states from the fleet → checked, downloaded and installed on one worker thread.

    desired (MQTT thread) ─► guard.check ─► job.json + guard.json ─► already active? ─► committed (no-op)
                                                                  ─► other slot holds it? ─► install from there
                                                                  ─► Download (chunks) ─► Installer.install

The MQTT callbacks only enqueue: desired states into an unbounded control queue (they are rare), chunk
messages of the artifact being fetched into a bounded queue (a full queue drops the chunk; it is asked
for again), so the network thread never blocks on disk or on an install. Every refusal and failure is
reported as an event with a code and a reason, and leaves the serving model alone.
"""

from __future__ import annotations

import errno
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeml.device_agent.agent_state import manifest_digest
from edgeml.device_agent.downloader import Download
from edgeml.device_agent.event_reporter import EventContext, EventReporter
from edgeml.device_agent.install_result import InstallResult
from edgeml.device_agent.installer import Installer
from edgeml.device_agent.update_store import UpdateStore
from edgeml.errors import ArtifactError, EdgemlError
from edgeml.protocol import (
    ChunkRequest,
    DesiredState,
    DesiredStateGuard,
    ProtocolError,
    SignedDesiredState,
    artifact_chunks_topic,
    chunk_request_topic,
    decode,
    encode,
    verify_desired_state,
)
from edgeml.transport import Transport

__all__ = ["UpdateSettings", "UpdateWorker"]

log = logging.getLogger(__name__)

_CHUNK_QUEUE = 64  # chunk messages waiting for the disk: 64 × 64 KiB = 4 MiB at most
_HASH_RETRIES = 3
_DISK_RETRY_S = 30.0
_REJECT_EVERY_S = 10.0  # at most one desired_rejected event per code per this many seconds


@dataclass(frozen=True)
class UpdateSettings:
    device_id: str
    target: str
    state_dir: Path
    window: int = 32
    quiet_s: float = 2.0


class UpdateWorker:
    def __init__(
        self,
        settings: UpdateSettings,
        installer: Installer,
        guard: DesiredStateGuard,
        reporter: EventReporter,
        transport: Transport,
        on_change: Callable[[InstallResult | None], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.installer = installer
        self.guard = guard
        self.reporter = reporter
        self.transport = transport
        self.on_change = on_change  # called after an install (with its result) and on every phase change
        self.clock = clock
        self.store = UpdateStore(settings.state_dir)
        self.downloads = settings.state_dir / "downloads"
        self.chunks_dropped = 0
        self._control: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._chunks: queue.Queue[bytes] = queue.Queue(_CHUNK_QUEUE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._job: Download | None = None
        self._job_key: tuple[bytes, str] | None = None  # (raw artifact digest, chunk topic) read by the MQTT thread
        self._phase: str | None = None
        self._hash_failures = 0
        self._paused_until = 0.0
        self._rejected_at: dict[str, float] = {}

    # ---- called from other threads ----------------------------------------------------------------------

    def on_desired(self, topic: str, payload: bytes) -> None:
        self._control.put(("desired", bytes(payload)))

    def on_chunk(self, topic: str, payload: bytes) -> None:
        key = self._job_key
        if key is None or topic != key[1] or payload[8:40] != key[0]:
            return  # another artifact's stream (or nothing to fetch): not ours
        try:
            self._chunks.put_nowait(payload)
        except queue.Full:
            self.chunks_dropped += 1

    def on_connected(self) -> None:
        self._control.put(("connected", b""))

    @property
    def phase(self) -> str | None:
        """`downloading` while an artifact is being fetched, else None (the installer's state then rules)."""
        return self._phase

    def progress(self) -> dict[str, Any] | None:
        job = self._job
        if job is None:
            return None
        a = job.desired.artifact
        return {"artifact": a.sha256, "name": a.name, "version": a.version, "received": job.received,
                "chunks": a.chunk_count, "rejected": dict(job.rejected)}  # fmt: skip

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="edgeml-agent-update", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and checkpoint a download under way, so the next start resumes it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        job = self._job
        if job is not None and not job.complete:
            try:
                job.assembler.checkpoint()
            except ArtifactError as exc:
                log.warning("download progress not saved: %s", exc.message)

    # ---- the worker thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        self._resume_job()
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # a bug here must not end updates for good
                log.exception("the update worker hit an unexpected error; carrying on")
                time.sleep(0.5)

    def _step(self) -> None:
        while True:
            try:
                kind, payload = self._control.get_nowait()
            except queue.Empty:
                break
            self._on_desired(payload) if kind == "desired" else self._on_reconnect()
        try:
            message = self._chunks.get(timeout=0.05)
        except queue.Empty:
            message = None
        if message is not None and self._job is not None:
            self._on_chunk(self._job, message)
        if self._job is not None and self.clock() >= self._paused_until and not self._job.complete:
            self._job.tick()

    def _resume_job(self) -> None:
        payload = self.store.job()
        if payload is None:
            return
        try:
            signed = decode(SignedDesiredState.KIND, payload)
            desired = verify_desired_state(signed, self.guard.public_key)  # type: ignore[arg-type]
        except ProtocolError as exc:
            log.error("the saved update no longer verifies ([%s] %s); dropping it", exc.code, exc.reason)
            self.store.clear_job()
            return
        log.info("resuming the update to %s %s", desired.artifact.name, desired.artifact.version)
        self._begin(desired, resumed=True)

    # ---- desired states ---------------------------------------------------------------------------------

    def _on_desired(self, payload: bytes) -> None:
        try:
            state = self.store.guard_state()
        except EdgemlError as exc:
            self._reject("guard_state_corrupt", exc.message, None)
            return
        verdict = self.guard.check(payload, state, self.installer.state().committed_release)
        if not verdict.accepted:
            if verdict.code != "duplicate":
                self._reject(verdict.code, verdict.reason, self._claimed(payload))
            return
        assert verdict.desired is not None
        self.store.save_job(payload)
        self.store.save_guard(verdict.state)
        self._begin(verdict.desired)

    def _begin(self, desired: DesiredState, resumed: bool = False) -> None:
        self._drop_job(keep_file_of=desired.artifact.sha256)
        self.reporter.context = _context(desired)
        a = desired.artifact
        if a.target != self.settings.target:
            self._finish_refused("wrong_target", f"{a.name} {a.version} is built for target {a.target!r}; this "
                                 f"device is {self.settings.target!r}")  # fmt: skip
        elif self._already_active(desired):
            self.reporter.report("committed", "committed", True, f"{a.name} {a.version} is already active")
            self._finish(None)
        elif (held := self._held_in_other_slot(desired)) is not None:
            slot, copy = held
            self.reporter.report("downloaded", "downloading", True, f"reused from slot {slot}, not downloaded")
            self._install(desired, copy)
        else:
            self._start_download(desired, resumed)

    def _start_download(self, desired: DesiredState, resumed: bool) -> None:
        try:
            job = Download(desired, self.downloads, self._publish_request, self.settings.window, self.settings.quiet_s,
                           self.clock)  # fmt: skip
        except ArtifactError as exc:
            self._download_failed(_disk_code(exc), exc.message, final=True)
            return
        self._job, self._phase, self._hash_failures, self._paused_until = job, "downloading", 0, 0.0
        self._set_job_key((bytes.fromhex(job.layout.sha256), artifact_chunks_topic(job.layout.sha256)))
        what = f"{job.received}/{job.layout.count} chunks already here" if resumed else f"{job.layout.count} chunks"
        self.reporter.report("download_started", "downloading", True, f"{desired.artifact.name} "
                             f"{desired.artifact.version}: {what}")  # fmt: skip
        self.on_change(None)
        if job.complete:
            self._downloaded(job)
        else:
            job.request_more()

    def _on_reconnect(self) -> None:
        if self._job is not None and not self._job.complete:
            self._job.request_again()

    # ---- chunks -----------------------------------------------------------------------------------------

    def _on_chunk(self, job: Download, message: bytes) -> None:
        if self.clock() < self._paused_until:
            return
        try:
            result = job.add(message)
        except ArtifactError as exc:
            self._paused_until = self.clock() + _DISK_RETRY_S
            self._download_failed(_disk_code(exc), exc.message, final=False)
            return
        except ProtocolError as exc:  # hash_mismatch: the whole file was wrong; start over
            self._hash_failures += 1
            final = self._hash_failures >= _HASH_RETRIES
            self._download_failed(exc.code, exc.reason + (" (gave up)" if final else " (fetching it again)"), final)
            if not final:
                job.request_more()
            return
        if result is None and job.rejected.total() == 1:  # the first damaged chunk of this download
            code = next(iter(job.rejected))
            self.reporter.report("chunk_rejected", "downloading", False,
                                 f"[{code}] a damaged chunk was dropped and is asked for again")  # fmt: skip
        if result == "complete":
            self._downloaded(job)

    def _downloaded(self, job: Download) -> None:
        rejected = job.rejected.total()
        note = f"; {rejected} damaged chunk(s) were dropped and fetched again" if rejected else ""
        self.reporter.report("downloaded", "downloading", True, f"sha256 and size match{note}")
        self._install(job.desired, job.path)

    def _publish_request(self, request: ChunkRequest) -> None:
        if not self.transport.connected:
            return  # asked again on reconnect
        try:
            self.transport.publish(chunk_request_topic(self.settings.device_id), encode(request), qos=1)
        except EdgemlError as exc:
            log.warning("chunk request not sent: %s", exc.message)

    # ---- install ----------------------------------------------------------------------------------------

    def _install(self, desired: DesiredState, path: Path) -> None:
        self._set_job_key(None)
        self._phase = None
        try:
            result = self.installer.install(path, allow_rollback=desired.allow_rollback)
        except Exception as exc:  # the installer rolled back what it could; the serving model is untouched
            log.exception("install of %s failed outside its lifecycle", path)
            message = exc.message if isinstance(exc, EdgemlError) else f"{type(exc).__name__}: {exc}"
            self.reporter.report("rolled_back", "idle", False, f"[install_error] {message}")
            result = None
        if result is not None and result.ok and result.active_slot:
            active = self.installer.active_model()
            if active is not None:
                self.store.record_slot(result.active_slot, desired.artifact.sha256, manifest_digest(active.manifest))
        self._finish(result)

    def _finish(self, result: InstallResult | None) -> None:
        self._drop_job()
        self.store.clear_job()
        self.reporter.context = EventContext()
        self.on_change(result)

    def _finish_refused(self, code: str, reason: str) -> None:
        # NOTE: an accepted update that ends without installing is reported like an install that failed
        # (`rolled_back`: nothing changed on the device), so the fleet closes the deployment at once
        self.reporter.report("rolled_back", "downloading", False, f"[{code}] {reason}")
        self._finish(None)

    def _download_failed(self, code: str, reason: str, final: bool) -> None:
        if not final:
            self.reporter.report("download_failed", "downloading", False, f"[{code}] {reason}")
            return
        if self._job is not None:
            self._job.discard()
        self._finish_refused(code, reason)

    def _drop_job(self, keep_file_of: str | None = None) -> None:
        self._set_job_key(None)
        job, self._job, self._phase = self._job, None, None
        if job is not None and job.layout.sha256 != keep_file_of:
            job.discard()
        if self.downloads.is_dir():
            for leftover in self.downloads.iterdir():
                if keep_file_of is None or not leftover.name.startswith(keep_file_of):
                    _remove(leftover)

    # ---- helpers ----------------------------------------------------------------------------------------

    def _set_job_key(self, key: tuple[bytes, str] | None) -> None:
        """Listen to the stream of the artifact being fetched, and to no other: a device that is not fetching
        receives no chunks, whatever the rest of the fleet downloads."""
        old, self._job_key = self._job_key, key
        if old is not None and (key is None or key[1] != old[1]):
            self.transport.unsubscribe(old[1])
        if key is not None and (old is None or key[1] != old[1]):
            self.transport.subscribe(key[1], self.on_chunk)

    def _already_active(self, desired: DesiredState) -> bool:
        state = self.installer.state()
        record = state.slots.get(state.active) if state.active else None
        if record is None or state.active is None:
            return False
        known = self.store.artifact_sha256(state.active, record.digest)
        if known is not None:
            return known == desired.artifact.sha256
        a = desired.artifact  # installed before this agent managed it: the signed name and release decide
        if (record.name, record.version, record.release) != (a.name, a.version, a.release):
            return False
        self.store.record_slot(state.active, a.sha256, record.digest)
        return True

    def _held_in_other_slot(self, desired: DesiredState) -> tuple[str, Path] | None:
        """(slot, a copy of its artifact) when the other slot holds the desired one (a fleet revert), else None."""
        state = self.installer.state()
        other = state.inactive
        record = state.slots.get(other)
        if record is None or self.store.artifact_sha256(other, record.digest) != desired.artifact.sha256:
            return None
        copy = self.downloads / f"{desired.artifact.sha256}.slot"
        _remove(copy)
        try:
            shutil.copytree(self.settings.state_dir / "slots" / other, copy)
        except OSError as exc:
            log.warning("cannot reuse slot %s (%s); downloading instead", other, exc)
            _remove(copy)
            return None
        return other, copy

    def _reject(self, code: str, reason: str, context: EventContext | None) -> None:
        now = self.clock()
        if now - self._rejected_at.get(code, -1e18) < _REJECT_EVERY_S:
            log.warning("desired state rejected again: [%s] %s", code, reason)
            return
        self._rejected_at[code] = now
        self.reporter.report("desired_rejected", "idle", False, f"[{code}] {reason}", context or EventContext())

    def _claimed(self, payload: bytes) -> EventContext | None:
        """Name the update in a rejection, but only from a message the fleet really signed."""
        try:
            desired = verify_desired_state(decode(SignedDesiredState.KIND, payload), self.guard.public_key)  # type: ignore[arg-type]
        except ProtocolError:
            return None
        return _context(desired)


def _context(desired: DesiredState) -> EventContext:
    return EventContext(desired.artifact.sha256, desired.artifact.release, desired.rollout_id)


def _disk_code(exc: ArtifactError) -> str:
    cause = exc.__cause__
    return "disk_full" if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT) else "disk_error"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

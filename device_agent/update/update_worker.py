"""Messages from the fleet → events of the update table, on one worker thread.

    desired (MQTT thread) ─► queue ─► guard.check ─► Installer.accept   (or a desired_rejected event)
    chunks  (MQTT thread) ─► queue ─► Download.add ─► Installer.fetched  (or .fail after three bad files)
    (re)connect ─────────────► queue ─► ask again for the missing chunks

The decisions (wrong target, already active, reuse the other slot, download) are the table's: this worker
only downloads when the installer's `downloading` step hands it an update (`fetch`), and keeps the download
checkpoint in the installer's state file. The MQTT callbacks only enqueue: desired states into an unbounded
control queue (they are rare), chunk messages of the artifact being fetched into a bounded queue (a full
queue drops the chunk; it is asked for again), so the network thread never blocks on disk or on an install.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeml.device_agent.messaging.event_reporter import EventContext, EventReporter
from edgeml.device_agent.update.downloader import Download
from edgeml.device_agent.update.install_failure import InstallFailure
from edgeml.device_agent.update.installer import Installer
from edgeml.device_agent.update.lifecycle import State
from edgeml.device_agent.update.state_store import StateFileError
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.installer = installer
        self.guard = guard
        self.reporter = reporter
        self.transport = transport
        self.clock = clock
        self.downloads = settings.state_dir / "downloads"
        self.chunks_dropped = 0
        self._control: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._chunks: queue.Queue[bytes] = queue.Queue(_CHUNK_QUEUE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._job: Download | None = None
        self._job_key: tuple[bytes, str] | None = None  # (raw artifact digest, chunk topic) read by the MQTT thread
        self._handed: DesiredState | None = None  # what `fetch` was given: downloaded once the installer returns
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

    def fetching_topic(self) -> str | None:
        """The chunk stream this worker listens to now (a bench job must not take it over), or None."""
        key = self._job_key
        return key[1] if key is not None else None

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
        self._call(self.installer.carry_on)  # an update a restart left waiting: its step runs again
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

    def _call(self, event: Callable[..., Any], *args: Any) -> None:
        """Hand one event to the installer; then start the download it asked for, or drop one it ended."""
        try:
            event(*args)
        except EdgemlError as exc:  # the state moved on (a newer update), or the state file is unwritable
            log.warning("update event not applied: %s", exc.message)
        except Exception:  # the installer ended the update (internal_error) before re-raising
            log.exception("the installer failed on an update event")
        handed, self._handed = self._handed, None
        if handed is not None:
            self._start_download(handed)
        elif self._job is not None and not self._still_wanted(self._job):
            self._drop_job()

    def _still_wanted(self, job: Download) -> bool:
        try:
            state = self.installer.state()
        except EdgemlError:
            return False
        wanted = state.update.artifact if state.lifecycle is State.DOWNLOADING and state.update else None
        return not job.complete and wanted == job.layout.sha256

    # ---- desired states ---------------------------------------------------------------------------------

    def _on_desired(self, payload: bytes) -> None:
        try:
            state = self.installer.state()
        except StateFileError as exc:
            self._reject("state_corrupt", exc.message, None)
            return
        guard_state = {"v": 1, "last_sequence": state.desired_sequence}
        verdict = self.guard.check(payload, guard_state, state.committed_release)
        if not verdict.accepted:
            if verdict.code != "duplicate":
                self._reject(verdict.code, verdict.reason, self._claimed(payload))
            return
        assert verdict.desired is not None
        self._call(self.installer.accept, payload, verdict.desired)

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
        a = desired.artifact
        return EventContext(a.sha256, a.release, desired.rollout_id)

    # ---- the download -----------------------------------------------------------------------------------

    def fetch(self, desired: DesiredState) -> None:
        """The installer's `downloading` step: download this update. Only noted here (the installer holds its
        state lock while it calls this); the worker loop starts the download right after."""
        self._handed = desired

    def _start_download(self, desired: DesiredState) -> None:
        a = desired.artifact
        if self._job is not None and self._job.layout.sha256 == a.sha256 and not self._job.complete:
            with contextlib.suppress(ArtifactError):  # a newer desired state for the same file carries on from here
                self._job.assembler.checkpoint()
        self._drop_job(keep_file_of=a.sha256)
        checkpoints = _StateCheckpoints(self.installer, a.sha256, self._saved_progress(a.sha256))
        try:
            job = Download(desired, self.downloads, self._publish_request, self.settings.window, self.settings.quiet_s,
                           self.clock, checkpoints)  # fmt: skip
        except ArtifactError as exc:
            self._give_up(desired.artifact.sha256, _disk_code(exc), exc.message)
            return
        self._job, self._hash_failures, self._paused_until = job, 0, 0.0
        self._set_job_key((bytes.fromhex(job.layout.sha256), artifact_chunks_topic(job.layout.sha256)))
        count = job.layout.count
        what = f"{job.received}/{count} chunks already here" if job.received else f"{count} chunks"
        self._report("download_started", True, f"{a.name} {a.version}: {what}")
        if job.complete:
            self._downloaded(job)
        else:
            job.request_more()

    def _saved_progress(self, artifact: str) -> str | None:
        try:
            update = self.installer.state().update
        except EdgemlError:
            return None
        return update.received if update is not None and update.artifact == artifact else None

    def _on_reconnect(self) -> None:
        if self._job is not None and not self._job.complete:
            self._job.request_again()

    def _on_chunk(self, job: Download, message: bytes) -> None:
        if self.clock() < self._paused_until:
            return
        try:
            result = job.add(message)
        except ArtifactError as exc:
            self._paused_until = self.clock() + _DISK_RETRY_S
            self._report("download_failed", False, f"[{_disk_code(exc)}] {exc.message}")
            return
        except ProtocolError as exc:  # hash_mismatch: the whole file was wrong; start over
            self._hash_failures += 1
            if self._hash_failures >= _HASH_RETRIES:
                self._give_up(job.layout.sha256, exc.code, exc.reason + " (gave up)")
                return
            self._report("download_failed", False, f"[{exc.code}] {exc.reason} (fetching it again)")
            job.request_more()
            return
        if result is None and job.rejected.total() == 1:  # the first damaged chunk of this download
            code = next(iter(job.rejected))
            self._report("chunk_rejected", False, f"[{code}] a damaged chunk was dropped and is asked for again")
        if result == "complete":
            self._downloaded(job)

    def _downloaded(self, job: Download) -> None:
        self._set_job_key(None)
        rejected = job.rejected.total()
        note = "sha256 and size match" + (f"; {rejected} damaged chunk(s) were dropped and fetched again" if rejected
                                          else "")  # fmt: skip
        self._call(self.installer.fetched, job.layout.sha256, job.path, note)

    def _give_up(self, artifact: str, code: str, reason: str) -> None:
        if self._job is not None:
            self._job.discard()
        self._call(self.installer.fail, artifact, InstallFailure(code, reason, "the fleet sends the update again"))
        self._drop_job()

    def _publish_request(self, request: ChunkRequest) -> None:
        if not self.transport.connected:
            return  # asked again on reconnect
        try:
            self.transport.publish(chunk_request_topic(self.settings.device_id), encode(request), qos=1)
        except EdgemlError as exc:
            log.warning("chunk request not sent: %s", exc.message)

    def _report(self, kind: str, ok: bool, reason: str) -> None:
        job = self._job
        a = job.desired.artifact if job is not None else None
        context = EventContext(a.sha256, a.release, job.desired.rollout_id) if a and job else EventContext()
        self.reporter.report(kind, "downloading", ok, reason, context)

    # ---- helpers ----------------------------------------------------------------------------------------

    def _drop_job(self, keep_file_of: str | None = None) -> None:
        """Stop fetching; discard the partial file unless it is `keep_file_of`'s (the installer removes the rest
        of `downloads/` when an update ends)."""
        self._set_job_key(None)
        job, self._job = self._job, None
        if job is not None and job.layout.sha256 != keep_file_of and not job.complete:
            with contextlib.suppress(EdgemlError):
                job.discard()

    def _set_job_key(self, key: tuple[bytes, str] | None) -> None:
        """Listen to the stream of the artifact being fetched, and to no other: a device that is not fetching
        receives no chunks, whatever the rest of the fleet downloads."""
        old, self._job_key = self._job_key, key
        if old is not None and (key is None or key[1] != old[1]):
            self.transport.unsubscribe(old[1])
        if key is not None and (old is None or key[1] != old[1]):
            self.transport.subscribe(key[1], self.on_chunk)


class _StateCheckpoints:
    """The Assembler's chunk bitmap, kept with the update in the installer's one state file."""

    def __init__(self, installer: Installer, artifact: str, received: str | None) -> None:
        self.installer, self.artifact, self._saved = installer, artifact, received

    def load(self) -> bytes | None:
        try:
            return base64.b64decode(self._saved, validate=True) if self._saved else None
        except ValueError:
            return None

    def save(self, bitmap: bytes) -> None:
        self._put(base64.b64encode(bitmap).decode())

    def clear(self) -> None:
        self._put(None)

    def _put(self, received: str | None) -> None:
        if received == self._saved:
            return
        try:
            self.installer.checkpoint(self.artifact, received)
        except StateFileError as exc:
            cause = exc.__cause__
            raise cause if isinstance(cause, OSError) else OSError(errno.EIO, exc.message) from exc
        except EdgemlError:
            return  # the update moved on (a newer one replaced it): nothing to keep
        self._saved = received


def _disk_code(exc: ArtifactError) -> str:
    cause = exc.__cause__
    return "disk_full" if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT) else "disk_error"

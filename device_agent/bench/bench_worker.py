"""Signed bench jobs → measurements on this device, on a thread of their own, without touching what it serves.

    bench topic (MQTT thread) ─► queue ─► BenchJobGuard.check ─► fetch artifact (and baseline) into
    state_dir/bench/<job>/ over the chunk streams ─► verify against the pinned key ─► measure_artifact (the
    same interleaved timing as `edgeml bench`) ─► bench_result ─► scratch folder removed

The guard's last accepted bench sequence is persisted before the job runs, so a replay after a crash or a
reboot is refused too. A refused job (unsigned, foreign key, another device's, replayed, expired) is
answered by a `bench_rejected` event, never by a result. The job opens its own runtime session: the serving
model, its slots and the update lifecycle are never read or written here.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.atomic_files import read_json, write_json_atomic
from edgeml.device_agent.messaging.event_reporter import EventReporter
from edgeml.device_agent.update.downloader import Download
from edgeml.errors import EdgemlError
from edgeml.protocol import (
    ArtifactRef,
    BenchJob,
    BenchJobGuard,
    BenchResult,
    ChunkRequest,
    ProtocolError,
    artifact_chunks_topic,
    bench_result_topic,
    chunk_request_topic,
    encode,
)
from edgeml.transport import Transport

__all__ = ["BenchWorker"]

log = logging.getLogger(__name__)
_CHUNK_QUEUE = 64


class BenchFailure(EdgemlError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Wanted:
    """What `Download` needs of a desired state: the artifact reference."""

    artifact: ArtifactRef


class BenchWorker:
    def __init__(
        self, device_id: str, state_dir: Path, key: Ed25519PublicKey, target: str, runtimes: tuple[str, ...],
        transport: Transport, reporter: EventReporter, busy_topic: Any = None,
    ) -> None:  # fmt: skip
        self.device_id, self.key, self.target, self.runtimes = device_id, key, target, runtimes
        self.transport, self.reporter = transport, reporter
        self.guard = BenchJobGuard(device_id, key)
        self.scratch = state_dir / "bench"
        self.sequence_file = state_dir / "agent" / "bench_guard.json"
        self.busy_topic = busy_topic or (lambda: None)  # the chunk stream the update worker listens to, if any
        self._jobs: queue.Queue[bytes] = queue.Queue()
        self._chunks: queue.Queue[bytes] = queue.Queue(_CHUNK_QUEUE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.completed = 0

    def on_job(self, topic: str, payload: bytes) -> None:
        self._jobs.put(bytes(payload))

    def start(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.scratch)  # NOTE: what a job interrupted by a crash left behind
        self._thread = threading.Thread(target=self._run, name="edgeml-agent-bench", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                payload = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._handle(payload)
            except Exception:  # a bug here must not end bench jobs for good
                log.exception("bench job failed unexpectedly; carrying on")

    def _handle(self, payload: bytes) -> None:
        verdict = self.guard.check(payload, self._last_sequence(), now=int(time.time()))
        if not verdict.accepted:
            log.warning("bench job refused: [%s] %s", verdict.code, verdict.reason)
            if verdict.code != "duplicate":
                self.reporter.report("bench_rejected", "idle", False, f"[{verdict.code}] {verdict.reason}")
            return
        job = verdict.job
        assert job is not None
        write_json_atomic(self.sequence_file, {"v": 1, "last_sequence": job.sequence})
        folder = self.scratch / job.job_id
        try:
            result = self._measure(job, folder)
            answer = BenchResult(job.job_id, job.sequence, True, int(time.time()), result=result)
        except BenchFailure as exc:
            answer = BenchResult(job.job_id, job.sequence, False, int(time.time()), exc.code, exc.message[:1024])
        except EdgemlError as exc:
            answer = BenchResult(job.job_id, job.sequence, False, int(time.time()), "runtime_error",
                                 exc.message[:1024])  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.transport.publish(bench_result_topic(self.device_id), encode(answer), qos=1)
        self.completed += 1
        log.info("bench job %s answered: ok=%s %s", job.job_id, answer.ok, answer.reason)

    def _last_sequence(self) -> int:
        try:
            saved = read_json(self.sequence_file)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError):
            return 2**53 - 1  # NOTE: an unreadable guard refuses every job rather than re-open replays
        return int(saved.get("last_sequence", 0)) if isinstance(saved, dict) else 0

    def _measure(self, job: BenchJob, folder: Path) -> dict[str, Any]:
        from edgeml.artifact.verify import VerificationError, open_artifact, read_manifest, verify
        from edgeml.bench_report import device_result
        from edgeml.benchmark import measure_artifact

        if job.artifact.target != self.target:
            raise BenchFailure("wrong_target", f"{job.artifact.name} is built for {job.artifact.target}, "
                                               f"this device is {self.target}")  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        tar = self._fetch(job.artifact, folder, job.deadline)
        base_tar = self._fetch(job.baseline, folder, job.deadline) if job.baseline else None
        with contextlib.ExitStack() as stack:
            try:
                verify(tar, self.key, scratch=folder)
                if base_tar is not None:
                    verify(base_tar, self.key, scratch=folder)
            except VerificationError as exc:
                raise BenchFailure("verify_failed", exc.message) from exc
            root = stack.enter_context(open_artifact(tar, scratch=folder))
            base = None
            if base_tar is not None:
                base_root = stack.enter_context(open_artifact(base_tar, scratch=folder))
                m = read_manifest(base_root)
                base = (base_root, m["target"]["runtime"], m["target"]["model_file"])
            result = measure_artifact(root, base, job.threads, job.warmup, job.duration_ms / 1000.0,
                                      runs=job.runs, verified=True)  # fmt: skip
            fidelity = _self_test(root, job.threads)
        from edgeml.runtimes import runtime_version

        versions = {r: runtime_version(r) or "not installed" for r in self.runtimes}
        return device_result(result, versions) | {"self_test": fidelity}

    def _fetch(self, ref: ArtifactRef, folder: Path, deadline: int) -> Path:
        topic = artifact_chunks_topic(ref.sha256)
        if self.busy_topic() == topic:
            raise BenchFailure("busy", f"an update is downloading {ref.name} {ref.version}; bench it afterwards")
        download = Download(_Wanted(ref), folder, self._request)  # type: ignore[arg-type]
        key = bytes.fromhex(ref.sha256)

        def on_chunk(t: str, payload: bytes) -> None:
            if payload[8:40] == key:
                with contextlib.suppress(queue.Full):
                    self._chunks.put_nowait(payload)

        self.transport.subscribe(topic, on_chunk)
        try:
            download.request_more()
            while not download.complete:
                if time.time() > deadline or self._stop.is_set():
                    raise BenchFailure("timed_out", f"{ref.name} {ref.version} not downloaded before the deadline")
                try:
                    message = self._chunks.get(timeout=0.1)
                except queue.Empty:
                    download.tick()
                    continue
                try:
                    download.add(message)
                except ProtocolError:
                    download.request_more()
        finally:
            self.transport.unsubscribe(topic)
        return download.path

    def _request(self, request: ChunkRequest) -> None:
        if self.transport.connected:
            self.transport.publish(chunk_request_topic(self.device_id), encode(request), qos=1)


def _self_test(root: Path, threads: int) -> dict[str, Any]:
    """The artifact on its own self-test inputs here, against the outputs recorded at compile time: per output
    max |got − expected| and cosine, and whether they pass the manifest's atol / min_cosine."""
    from edgeml.artifact.verify import read_manifest
    from edgeml.device_agent.update.install_failure import InstallFailure
    from edgeml.device_agent.update.self_test import SelfTestPolicy, run_self_test

    try:
        report = run_self_test(root, read_manifest(root), SelfTestPolicy(latency_factor=None), threads)
    except InstallFailure as exc:
        return {"passed": False, "reason": f"[{exc.code}] {exc.message}"[:1024]}
    return {"passed": True, "outputs": report.outputs}

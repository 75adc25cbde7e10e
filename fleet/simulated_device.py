"""A light device that speaks the real protocol, for `edgeml fleet simulate`, load tests and rehearsals.

It does everything a device does on the wire — hello, retained status with a last will, signed desired
state checked against the pinned key (replays and stale messages ignored), windowed chunk requests with
re-requests for what is missing, whole-artifact sha256 check — but hashes the artifact and drops it instead
of installing it, keeping only its `manifest.json` (read from the tar as it streams by) for the reference
profile, and reports synthetic telemetry: latency, errors, and input histograms over the reference bins
with a chosen share of drift. Faults per version (`latency_ms=+40,error_rate=0.05,drift=0.5`) let an
operator rehearse an abort, or a retraining request, before it happens for real.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.artifact.canonical import canonical_json
from edgeml.artifact.manifest import MANIFEST_NAME
from edgeml.fleet.database import FleetError
from edgeml.fleet.tar_member_tap import TarMemberTap
from edgeml.protocol import (
    BenchJob,
    BenchJobGuard,
    BenchResult,
    ChunkRequest,
    DesiredState,
    DesiredStateGuard,
    Event,
    Hello,
    ModelRef,
    ProtocolError,
    Status,
    Telemetry,
    artifact_chunks_topic,
    bench_result_topic,
    bench_topic,
    chunk_request_topic,
    decode_chunk,
    desired_topic,
    encode,
    events_topic,
    hello_topic,
    status_topic,
    telemetry_topic,
)
from edgeml.sketches import DDSketch
from edgeml.transport import Transport, Will

__all__ = ["Fault", "SimulatedDevice", "check_drift"]

log = logging.getLogger(__name__)
WINDOW = 64  # chunks asked for at a time
MANIFEST_LIMIT = 1 << 20  # the most manifest bytes a download keeps (the digits manifest is ~9 KB)


@dataclass(frozen=True)
class Fault:
    latency_ms: float = 0.0  # added to every simulated inference
    error_rate: float = 0.0
    accuracy: float | None = None  # share correct among calls with ground-truth feedback (None: the device's own)
    drift: float | None = None  # share of inputs moved to the top reference bin (None: the device's own)

    def __post_init__(self) -> None:
        if self.drift is not None:
            check_drift(self.drift, "a fault's drift")


def check_drift(value: float, name: str = "drift") -> float:
    """`value` if it is a share in [0, 1], else a FleetError naming `name` (a flag, a fault) and the range."""
    if not 0.0 <= value <= 1.0:
        raise FleetError(
            f"{name} {value:g} is outside [0, 1]",
            "it is the share of inputs that drifted: 0 leaves them like the model's reference data, "
            "1 moves every input value to the top reference bin",
        )
    return value


@dataclass
class _Download:
    """Chunks are hashed in index order as they become contiguous and then dropped: a thousand simulated
    devices fetching a 5 MB artifact hold kilobytes each, not the artifact — plus the manifest, which the
    tap keeps as it goes by."""

    desired: DesiredState
    received: set[int] = field(default_factory=set)
    early: dict[int, bytes] = field(default_factory=dict)  # arrived ahead of the next index to hash
    next_index: int = 0
    highest: int = -1
    asked: int = -1  # the highest index asked for
    size: int = 0
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)
    manifest: TarMemberTap = field(default_factory=lambda: TarMemberTap(MANIFEST_NAME, MANIFEST_LIMIT))
    last_progress: float = 0.0

    def add(self, index: int, payload: bytes) -> None:
        self.received.add(index)
        self.highest = max(self.highest, index)
        self.early[index] = payload
        while self.next_index in self.early:
            data = self.early.pop(self.next_index)
            self.hasher.update(data)
            self.manifest.feed(data)
            self.size += len(data)
            self.next_index += 1


class SimulatedDevice:
    def __init__(
        self, device_id: str, target: str, transport: Transport, fleet_key: Ed25519PublicKey,
        faults: dict[str, Fault] | None = None, latency_ms: float = 5.0, seed: int = 0,
    ) -> None:  # fmt: skip
        self.device_id, self.target, self.transport = device_id, target, transport
        self.guard = DesiredStateGuard(device_id, fleet_key)
        self.guard_state: dict | None = None  # the guard's persisted state; None on a new device
        self.faults = faults or {}
        self.base_latency_ms = latency_ms
        self.current: ModelRef | None = None
        self.download: _Download | None = None
        self.corrupt_installs = 0
        self.reference_profile: dict | None = None  # the installed manifest's; input histograms are over its bins
        self.drift = 0.0  # 0: inputs look like the reference; 1: every value lands in the top bin
        self.accuracy: float | None = None  # set it to report ground-truth feedback (the agent's `accuracy` field)
        self.rejected: list[str] = []
        self._seq = 0
        self._rng = random.Random(seed)
        self.bench_guard = BenchJobGuard(device_id, fleet_key)
        self.bench_sequence = 0  # the last bench job it accepted
        self.bench_answered = 0
        self._bench_due: list[tuple[float, BenchJob]] = []  # accepted jobs, answered when their timing would end

    # -- wiring ----------------------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        self.transport.subscribe(desired_topic(self.device_id), self.on_desired)
        self.transport.subscribe(bench_topic(self.device_id), self.on_bench)
        if self.download is not None:  # NOTE: restarted on a new connection mid-download: resume it, as a device does
            self.transport.subscribe(artifact_chunks_topic(self.download.desired.artifact.sha256), self.on_chunk)
        self.transport.on_connect = self.announce  # NOTE: re-announce after every reconnect, as a device does
        self.transport.connect(timeout)

    def announce(self) -> None:
        hello = Hello(self.device_id, self.target, "sim-0.1", 10**9, {"onnxruntime": "sim"}, self.current)
        self.transport.publish(hello_topic(self.device_id), encode(hello), qos=1, retain=True)  # NOTE: docs/protocol.md
        self.publish_status("committed" if self.current else "idle")

    def publish_status(self, state: str) -> None:
        slots = {"a": self.current} if self.current else {}
        status = Status(state, True, int(time.time()), slots, "a" if self.current else None,
                        (self.guard_state or {}).get("last_sequence"))  # fmt: skip
        self.transport.publish(status_topic(self.device_id), encode(status), qos=1, retain=True)

    def will(self) -> Will:
        status = Status("offline", False, int(time.time()), {}, None, None)
        return Will(status_topic(self.device_id), encode(status))

    def goodbye(self) -> None:
        """Mark the device offline before a clean disconnect (the broker sends the last will only for an unclean
        one), as the agent does when it stops: a simulator that exits leaves no device "online"."""
        will = self.will()
        self.transport.publish(will.topic, will.payload, qos=1, retain=True)

    # -- desired state and download ---------------------------------------------------------------------------
    def on_desired(self, topic: str, payload: bytes) -> None:
        installed = self.current.release if self.current else None
        verdict = self.guard.check(payload, self.guard_state, installed)
        if not verdict.accepted:
            if verdict.code != "duplicate":
                self.rejected.append(verdict.code)
                self._event("desired_rejected", "idle", False, verdict.reason)
            return
        self.guard_state = verdict.state
        desired = verdict.desired
        if self.current and self.current.sha256 == desired.artifact.sha256:
            self.publish_status("committed")
            return
        if self.download and self.download.desired.artifact.sha256 != desired.artifact.sha256:
            self.transport.unsubscribe(artifact_chunks_topic(self.download.desired.artifact.sha256))
        self.download = _Download(desired, last_progress=time.monotonic())
        self.transport.subscribe(artifact_chunks_topic(desired.artifact.sha256), self.on_chunk)
        self.publish_status("downloading")
        self.request_missing()

    def request_missing(self, gaps: bool = True) -> None:
        """Ask for the first WINDOW chunks it lacks (`gaps`: at the start, and after a quiet spell, when what
        is missing is lost), or, while its stream flows, for new chunks, at most WINDOW past the highest it
        holds: never again for chunks that may still be on their way (re-sends for other devices arrive out
        of order), which would have them re-sent to every device on the stream."""
        d = self.download
        if d is None:
            return
        count = d.desired.artifact.chunk_count
        if gaps:
            missing = [i for i in range(count) if i not in d.received][:WINDOW]
        else:
            ahead = range(max(d.highest, d.asked) + 1, min(count, d.highest + 1 + WINDOW))
            missing = [i for i in ahead if i not in d.received]
        if not missing:
            return
        d.asked = max(d.asked, missing[-1])
        request = ChunkRequest.for_indices(d.desired.artifact.sha256, d.desired.artifact.chunk_size, missing)
        self.transport.publish(chunk_request_topic(self.device_id), encode(request), qos=1)

    def on_chunk(self, topic: str, payload: bytes) -> None:
        d = self.download
        try:
            chunk = decode_chunk(payload)
        except ProtocolError as exc:
            self.rejected.append(exc.code)
            return
        if d is None or chunk.layout != d.desired.artifact.layout():
            return
        if chunk.index in d.received:
            return  # NOTE: no progress: a stream busy with re-sends for others is no reason not to ask for our gaps
        d.last_progress = time.monotonic()
        d.add(chunk.index, chunk.payload)
        if len(d.received) == d.desired.artifact.chunk_count:
            self._finish(d)
        elif len(d.received) % (WINDOW // 4) == 0:
            self.request_missing(gaps=False)

    def poll(self, quiet_s: float = 2.0) -> None:
        """Re-request what is missing when the stream went quiet (a disconnect, a lost window); answer the bench
        jobs whose timing has ended."""
        if self._bench_due:
            self._answer_due()
        if self.download and time.monotonic() - self.download.last_progress > quiet_s:
            self.download.last_progress = time.monotonic()
            self.request_missing()

    def _finish(self, d: _Download) -> None:
        a = d.desired.artifact
        self.download = None
        self.transport.unsubscribe(artifact_chunks_topic(a.sha256))  # NOTE: re-sends for others are not ours
        if d.hasher.hexdigest() != a.sha256 or d.size != a.size:
            self.corrupt_installs += 1
            # NOTE: nothing was installed: a refusal, as the agent reports it (`refused`, step `downloading`)
            self._event("refused", "downloading", False, "[hash_mismatch] artifact sha256 mismatch", a.sha256,
                        a.release, d.desired.rollout_id)  # fmt: skip
            self.publish_status("refused")
            return
        self.current = ModelRef(a.name, a.version, a.release, a.sha256)
        self.reference_profile = _reference_profile(d.manifest, a.sha256)  # NOTE: trusted only now, sha256 checked
        self._event("committed", "committed", True, "", a.sha256, a.release, d.desired.rollout_id)
        self.publish_status("committed")

    # -- bench jobs ------------------------------------------------------------------------------------------------
    def on_bench(self, topic: str, payload: bytes) -> None:
        """A bench job, checked as the agent checks it; answered (by `poll`) once its timing would have ended,
        with latencies drawn as the telemetry's are (the version's fault added). It fetches no artifact."""
        verdict = self.bench_guard.check(payload, self.bench_sequence, now=int(time.time()))
        if not verdict.accepted:
            if verdict.code != "duplicate":
                self.rejected.append(verdict.code)
                self._event("bench_rejected", "idle", False, f"[{verdict.code}] {verdict.reason}")
            return
        self.bench_sequence = verdict.last_sequence
        job = verdict.job
        seconds = job.duration_ms / 1000.0 if not job.runs else job.runs * self.base_latency_ms / 1000.0
        self._bench_due.append((time.monotonic() + min(seconds, 60.0), job))

    def answer_bench(self, job: BenchJob) -> None:
        from edgeml.bench_report import device_result
        from edgeml.benchmark import BenchResult as Measured
        from edgeml.benchmark import compare_speed
        from edgeml.timing import LatencyStats

        n = job.runs or max(30, min(5000, int(job.duration_ms / max(self.base_latency_ms, 0.01))))
        samples = {"artifact": self._bench_samples(job.artifact.version, n)}
        if job.baseline is not None:
            samples["baseline"] = self._bench_samples(job.baseline.version, n)
        latency = {k: LatencyStats.from_samples(v) for k, v in samples.items()}
        both = "baseline" in samples
        comparison = compare_speed(samples["artifact"], samples["baseline"]) if both else None
        summary = {"name": job.artifact.name, "version": job.artifact.version, "release": job.artifact.release,
                   "precision": "simulated", "target": job.artifact.target}  # fmt: skip
        measured = Measured(summary, job.threads, latency, {"peak_rss": 0.0}, comparison.ratio if both else None,
                            True, comparison, samples_s=samples)  # fmt: skip
        host = {"arch": "simulated", "cpu": "simulated device", "cores": 1, "vnni": False, "amx": False, "isa": [],
                "description": "simulated"}  # fmt: skip
        result = device_result(measured, {"onnxruntime": "sim"}, host) | {"simulated": True}
        answer = BenchResult(job.job_id, job.sequence, True, int(time.time()), result=result)
        self.transport.publish(bench_result_topic(self.device_id), encode(answer), qos=1)
        self.bench_answered += 1

    def _bench_samples(self, version: str, n: int) -> list[float]:
        import numpy as np  # NOTE: a simulator answers for hundreds of devices on one core: draw them at once

        extra = self.faults.get(version, Fault()).latency_ms
        base = self.base_latency_ms
        drawn = np.random.default_rng(self._rng.getrandbits(64)).normal(base, base * 0.1, n)
        return ((np.maximum(0.01, drawn) + extra) / 1000.0).tolist()

    def _answer_due(self) -> None:
        now = time.monotonic()
        due = [job for at, job in self._bench_due if at <= now]
        self._bench_due = [(at, job) for at, job in self._bench_due if at > now]
        for job in due:
            self.answer_bench(job)

    # -- telemetry -------------------------------------------------------------------------------------------------
    def emit_telemetry(self, calls: int = 100, period_s: int = 60) -> None:
        fault = self.faults.get(self.current.version, Fault()) if self.current else Fault()
        sketch = DDSketch()
        errors = 0
        for _ in range(calls):
            sketch.add(max(0.01, self._rng.gauss(self.base_latency_ms, self.base_latency_ms * 0.1)) + fault.latency_ms)
            errors += self._rng.random() < fault.error_rate
        self._seq += 1
        now = int(time.time())
        drift = self._drift_counts(calls, fault)
        t = Telemetry(self._seq, now - period_s, now, self.current, sketch, calls, errors, drift)
        payload = encode(t)
        accuracy = fault.accuracy if fault.accuracy is not None else self.accuracy
        if accuracy is not None:  # NOTE: an optional field, added the way the agent adds it
            correct = sum(self._rng.random() < accuracy for _ in range(calls))
            body = json.loads(payload) | {"accuracy": {"output": {"labelled": calls, "correct": correct}}}
            payload = canonical_json(body)
        self.transport.publish(telemetry_topic(self.device_id), payload, qos=1)

    def _drift_counts(self, calls: int, fault: Fault) -> dict[str, dict[int, tuple[int, ...]]]:
        """Histograms over the reference bins: the reference mix, with a `drift` share moved to the top bin."""
        if not self.reference_profile:
            return {}
        drift = fault.drift if fault.drift is not None else self.drift
        out: dict[str, dict[int, tuple[int, ...]]] = {}
        for name, spec in self.reference_profile.get("inputs", {}).items():
            for i, feature in enumerate(spec["features"]):
                ref = feature["counts"]
                total = sum(ref) or 1
                counts = [round(calls * (1 - drift) * c / total) for c in ref]
                counts[-1] += round(calls * drift)
                out.setdefault(name, {})[i] = tuple(counts)
        return out

    def _event(self, kind, step, ok, reason, artifact=None, release=None, rollout_id=None) -> None:
        self._seq += 1
        e = Event(kind, step, ok, self._seq, int(time.time()), reason, artifact, release, rollout_id)
        self.transport.publish(events_topic(self.device_id), encode(e), qos=1)


def _reference_profile(tap: TarMemberTap, sha256: str) -> dict | None:
    """The verified artifact's reference profile, or None (no input histograms) with the reason logged."""
    try:
        manifest = json.loads(tap.data) if tap.data is not None else None
    except ValueError as exc:
        log.warning("artifact %s: manifest.json is not JSON (%s); no drift histograms", sha256[:12], exc)
        return None
    if manifest is None:
        log.warning("artifact %s: %s; no drift histograms", sha256[:12], tap.problem or "manifest.json incomplete")
        return None
    return (manifest.get("reference_profile") if isinstance(manifest, dict) else None) or None

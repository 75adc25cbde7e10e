"""Fleet → device, signed: a benchmark job (`edgeml/v1/bench_job`) — time an artifact (and optionally a
baseline) on this device from a scratch slot, and answer with a `bench_result`.

Signed exactly like a desired state (Ed25519 by the fleet key over the canonical JSON of every field but
`signature`; integers only). `BenchJobGuard` is the device's check, in order: it decodes, the pinned key
signed it, it is addressed to this device, its `sequence` is above the last bench job the device accepted
(a per-device counter of its own, separate from desired states: replays are `duplicate` or `stale`), and
its deadline has not passed. A job can neither install nor change what the device serves: it names an
artifact to measure and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeml.artifact.signing import signature_block, signature_problem
from edgeml.protocol.desired_state import ArtifactRef, split_signed
from edgeml.protocol.fields import Fields, header
from edgeml.protocol.kind import Kind
from edgeml.protocol.protocol_error import ProtocolError
from edgeml.protocol.topics import check_device_id

__all__ = ["BenchJob", "BenchJobGuard", "BenchVerdict", "SignedBenchJob", "sign_bench_job"]

MAX_DURATION_MS = 3_600_000  # an hour of timing at most
MAX_RUNS = 10_000_000


@dataclass(frozen=True)
class BenchJob:
    """Time `artifact` (and `baseline`, interleaved in the same run) for `duration_ms`, or for exactly `runs`
    rounds when `runs` > 0, after `warmup` calls, on `threads` threads; answer by `deadline` (epoch s)."""

    KIND: ClassVar[Kind] = Kind.BENCH_JOB

    device_id: str
    job_id: str
    sequence: int
    issued_at: int
    deadline: int
    artifact: ArtifactRef
    baseline: ArtifactRef | None = None
    duration_ms: int = 5000
    runs: int = 0
    warmup: int = 20
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            **header(self.KIND),
            "device_id": self.device_id,
            "job_id": self.job_id,
            "sequence": self.sequence,
            "issued_at": self.issued_at,
            "deadline": self.deadline,
            "artifact": self.artifact.to_dict(),
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "duration_ms": self.duration_ms,
            "runs": self.runs,
            "warmup": self.warmup,
            "threads": self.threads,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> BenchJob:
        f = Fields.payload(obj, cls.KIND)
        issued_at = f.integer("issued_at")
        return cls(
            device_id=f.ident("device_id"),
            job_id=f.ident("job_id"),
            sequence=f.integer("sequence", 1),
            issued_at=issued_at,
            deadline=f.integer("deadline", issued_at),
            artifact=ArtifactRef.read(f.nested("artifact")),
            baseline=ArtifactRef.read(f.nested("baseline")) if f.present("baseline") else None,
            duration_ms=f.integer("duration_ms", 0, MAX_DURATION_MS),
            runs=f.integer("runs", 0, MAX_RUNS),
            warmup=f.integer("warmup", 0, 100_000),
            threads=f.integer("threads", 1, 256),
        )


@dataclass(frozen=True)
class SignedBenchJob:
    """A bench job with its signature block, exactly as it travels (`body` is what was signed)."""

    KIND: ClassVar[Kind] = Kind.BENCH_JOB

    job: BenchJob
    signature: dict[str, str]
    body: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {**self.body, "signature": dict(self.signature)}

    @classmethod
    def from_dict(cls, obj: Any) -> SignedBenchJob:
        signature, body = split_signed(obj, "bench_job", "only the fleet's key can start a job")
        return cls(BenchJob.from_dict(body), signature, body)


def sign_bench_job(job: BenchJob, key: Ed25519PrivateKey) -> SignedBenchJob:
    body = job.to_dict()
    BenchJob.from_dict(body)  # never sign what a device would reject
    return SignedBenchJob(job, signature_block(body, key), body)


@dataclass(frozen=True)
class BenchVerdict:
    """`code`: accepted | a decoding code | unsigned | bad_signature | wrong_key | wrong_device | duplicate |
    stale | expired. `last_sequence`: what to persist (unchanged unless accepted)."""

    accepted: bool
    code: str
    reason: str
    last_sequence: int
    job: BenchJob | None = None


class BenchJobGuard:
    """Decides whether this device runs a bench job; see the module docstring for the rules."""

    def __init__(self, device_id: str, public_key: Ed25519PublicKey) -> None:
        self.device_id = check_device_id(device_id)
        self.public_key = public_key

    def check(self, message: SignedBenchJob | bytes, last_sequence: int, now: int | None = None) -> BenchVerdict:
        try:
            job = self._verified(message)
            if job.sequence == last_sequence:
                raise ProtocolError("duplicate", f"bench job sequence {job.sequence} was already accepted")
            if job.sequence < last_sequence:
                raise ProtocolError("stale", f"bench job sequence {job.sequence} is below the accepted "
                                             f"{last_sequence}: a replay")  # fmt: skip
            if now is not None and now > job.deadline:
                raise ProtocolError("expired", f"bench job {job.job_id} deadline {job.deadline} passed (now {now})")
        except ProtocolError as exc:
            return BenchVerdict(False, exc.code, exc.reason, last_sequence)
        return BenchVerdict(True, "accepted", f"bench job {job.job_id}", job.sequence, job)

    def _verified(self, message: SignedBenchJob | bytes) -> BenchJob:
        if isinstance(message, (bytes, bytearray, memoryview)):
            from edgeml.protocol.codec import decode

            message = decode(Kind.BENCH_JOB, bytes(message))  # type: ignore[assignment]
        assert isinstance(message, SignedBenchJob)
        problem = signature_problem(message.signature, message.body, self.public_key)
        if problem is not None:
            raise ProtocolError(problem[0], f"bench job {problem[1]}")
        if message.job.device_id != self.device_id:
            raise ProtocolError("wrong_device", f"bench job is for {message.job.device_id!r}, not {self.device_id!r}")
        return message.job


def claimed_job_id(obj: Mapping[str, Any] | None) -> str | None:
    """The job id a (possibly refused) message claims, for the refusal's log line only."""
    value = obj.get("job_id") if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) and len(value) <= 64 else None

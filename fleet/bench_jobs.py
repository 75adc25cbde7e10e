"""Benchmark jobs on devices: one job row, one result row per chosen device, each with its own strictly
growing per-device bench sequence (the device's replay guard), written before anything is published.

    pending ─(service publishes the signed job)→ sent ─(device answers)→ done | failed
    pending | sent ─(deadline passed, or the device is offline and the job is settled)→ offline | timed_out

The fleet service publishes every pending/sent row of a live job (retained on the device's `bench` topic:
a device that reconnects before the deadline still gets it) and applies each `bench_result`; the CLI
creates the job, waits, and settles it at its deadline, so nothing waits on an offline device forever.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from edgeml.fleet.artifact_store import ArtifactStore
from edgeml.fleet.database import Database, FleetError, FleetNotFoundError
from edgeml.fleet.device_registry import DeviceRegistry
from edgeml.fleet.selector import parse_selector
from edgeml.protocol import BenchResult

__all__ = ["FINAL_STATES", "BenchJobs", "BenchSettings"]

FINAL_STATES = frozenset({"done", "failed", "offline", "timed_out", "no_artifact"})


@dataclass(frozen=True)
class BenchSettings:
    duration_ms: int = 5000
    runs: int = 0
    warmup: int = 20
    threads: int = 1
    deadline_s: float = 120.0

    def check(self) -> None:
        """FleetError naming the first setting a device would refuse (the bench_job's ranges)."""
        limits = {"duration_ms": (self.duration_ms, 0, 3_600_000), "runs": (self.runs, 0, 10_000_000),
                  "warmup": (self.warmup, 0, 100_000), "threads": (self.threads, 1, 256)}  # fmt: skip
        for name, (value, lo, hi) in limits.items():
            if not lo <= value <= hi:
                raise FleetError(f"bench {name} {value} is outside [{lo}, {hi}]", "see `edgeml fleet bench --help`")
        if self.deadline_s <= 0:
            raise FleetError(f"bench deadline {self.deadline_s:g} s is not positive", "give the devices time to answer")


class BenchJobs:
    def __init__(self, db: Database, artifacts: ArtifactStore, devices: DeviceRegistry) -> None:
        self.db, self.artifacts, self.devices = db, artifacts, devices

    def create(
        self, artifact: str, selector: str, settings: BenchSettings, now: float, baseline: str | None = None
    ) -> dict[str, Any]:
        """A job for every device `selector` picks: the artifact (and baseline) built for its target."""
        settings.check()
        chosen = self.devices.select(parse_selector(selector))
        if not chosen:
            raise FleetError(f"no device matches {selector!r}", "see `edgeml fleet devices`")
        builds = {a["target"]: a["sha256"] for a in self.artifacts.find(artifact)}
        bases = {a["target"]: a["sha256"] for a in self.artifacts.find(baseline)} if baseline else {}
        job_id = f"bench-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}-{secrets.token_hex(3)}"
        deadline = now + settings.deadline_s
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO bench_jobs VALUES (?,?,?,?,?,?,?)",
                (job_id, artifact, baseline, selector, json.dumps(asdict(settings)), now, deadline),
            )
            for d in chosen:
                row = tx.execute("SELECT MAX(sequence) FROM bench_results WHERE device_id=?", (d["id"],)).fetchone()
                sha = builds.get(d["target"])
                state, reason = ("pending", "") if sha else ("no_artifact", f"no build of {artifact} for {d['target']}")
                tx.execute(
                    "INSERT INTO bench_results (job_id, device_id, sequence, artifact_sha, baseline_sha, state, reason,"
                    " finished_at) VALUES (?,?,?,?,?,?,?,?)",
                    (job_id, d["id"], (row[0] or 0) + 1, sha, bases.get(d["target"]), state, reason,
                     None if sha else now),
                )  # fmt: skip
        return self.status(job_id)

    def to_publish(self, now: float) -> list[dict[str, Any]]:
        """Rows of live jobs a device has not answered yet, with their job's settings and deadline."""
        rows = self.db.query(
            "SELECT r.*, j.settings, j.deadline, j.created_at FROM bench_results r "
            "JOIN bench_jobs j ON j.id = r.job_id "
            "WHERE r.state IN ('pending', 'sent') AND j.deadline > ? ORDER BY r.job_id, r.device_id",
            (now,),
        )
        return [dict(r) | {"settings": json.loads(r["settings"])} for r in rows]

    def mark_sent(self, rows: list[tuple[str, str]], now: float) -> None:
        """(job id, device id) pairs just published: one transaction for all of them."""
        if not rows:
            return
        with self.db.transaction() as tx:
            tx.executemany(
                "UPDATE bench_results SET state='sent', sent_at=? WHERE job_id=? AND device_id=? AND state='pending'",
                [(now, job_id, device_id) for job_id, device_id in rows],
            )

    def record(self, device_id: str, result: BenchResult, now: float) -> bool:
        """Apply a device's answer (once: a repeat or an answer to a settled job changes nothing)."""
        state = "done" if result.ok else "failed"
        body = json.dumps(result.result) if result.result is not None else None
        reason = "" if result.ok else f"[{result.code}] {result.reason}"
        with self.db.transaction() as tx:
            cur = tx.execute(
                "UPDATE bench_results SET state=?, finished_at=?, reason=?, result=? WHERE job_id=? AND device_id=? "
                "AND sequence=? AND state IN ('pending', 'sent')",
                (state, now, reason, body, result.job_id, device_id, result.sequence),
            )
            return bool(cur.rowcount)

    def settle(self, job_id: str, now: float, force: bool = False) -> dict[str, Any]:
        """Past the deadline (or with `force`): every unanswered device is `offline` (the registry says so) or
        `timed_out`. Before it: only devices offline now are settled as `offline`, when `force` is set."""
        job = self._job(job_id)
        online = {d["id"]: bool(d["online"]) for d in self.devices.select()}
        with self.db.transaction() as tx:
            for r in tx.execute(
                "SELECT device_id, state FROM bench_results WHERE job_id=? AND state IN ('pending','sent')", (job_id,)
            ).fetchall():
                offline = not online.get(r["device_id"], False)
                if now >= job["deadline"] or (force and offline):
                    state = "offline" if offline else "timed_out"
                    why = "the device was offline" if offline else "no answer before the deadline"
                    tx.execute(
                        "UPDATE bench_results SET state=?, finished_at=?, reason=? WHERE job_id=? AND device_id=? "
                        "AND state IN ('pending','sent')",
                        (state, now, why, job_id, r["device_id"]),
                    )
        return self.status(job_id)

    def wait(
        self, job_id: str, poll_s: float = 0.5, on_poll: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Poll until every online device answered (devices offline are then settled as offline) or the deadline
        passed (every unanswered device: offline or timed out); the settled status. Needs a fleet service
        running on this database to publish the jobs and take in the answers."""
        while True:
            status = self.status(job_id)
            if time.time() >= status["deadline"]:
                return self.settle(job_id, time.time())
            online = {d["id"] for d in self.devices.select() if d["online"]}
            waiting = [r for r in status["results"] if r["state"] not in FINAL_STATES and r["device_id"] in online]
            if not waiting:
                return self.settle(job_id, time.time(), force=True)
            if on_poll is not None:
                on_poll(status)
            time.sleep(poll_s)

    def status(self, job_id: str) -> dict[str, Any]:
        job = self._job(job_id)
        rows = self.db.query("SELECT * FROM bench_results WHERE job_id=? ORDER BY device_id", (job_id,))
        results = [dict(r) | {"result": json.loads(r["result"]) if r["result"] else None} for r in rows]
        return job | {"results": results}

    def all(self) -> list[dict[str, Any]]:
        return [self._decoded(r) for r in self.db.query("SELECT * FROM bench_jobs ORDER BY created_at")]

    def _job(self, job_id: str) -> dict[str, Any]:
        rows = self.db.query("SELECT * FROM bench_jobs WHERE id=?", (job_id,))
        if not rows:
            raise FleetNotFoundError(f"no bench job {job_id!r}", "see `edgeml fleet bench --list`")
        return self._decoded(rows[0])

    @staticmethod
    def _decoded(row: Any) -> dict[str, Any]:
        return dict(row) | {"settings": json.loads(row["settings"])}

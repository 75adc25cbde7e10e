"""A/B experiments: two versions on hash-assigned cohorts, compared on their telemetry with stated tests.

A device's arm is sha256(experiment id, device id) mod 100 < split → B, else A: stable, and independent
of the order devices joined. The unit of analysis is the device (a device's calls are not independent
samples), so:
  - latency (pXX_latency): per-device quantile from its merged sketch; Mann–Whitney U (two-sided) on the
    two arms' device values; difference of medians (B − A) with a seeded bootstrap 95 % interval;
  - error_rate: errors/calls per arm; accuracy: correct/labelled from ground-truth feedback; both by a
    two-proportion z-test, difference (B − A) with a Wald 95 % interval.
No verdict before each arm has `min_devices` reporting devices (latency) or `min_calls` calls (rates).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeml.fleet.artifact_store import ArtifactStore
from edgeml.fleet.database import Database, FleetConflictError, FleetError, FleetNotFoundError
from edgeml.fleet.desired_states import DesiredStates
from edgeml.fleet.device_claims import refuse_claimed
from edgeml.fleet.device_registry import DeviceRegistry
from edgeml.fleet.selector import parse_selector
from edgeml.fleet.telemetry_intake import TelemetryIntake

__all__ = ["METRICS", "Experiments"]

METRICS = {
    "p50_latency": 0.5,
    "p90_latency": 0.9,
    "p95_latency": 0.95,
    "p99_latency": 0.99,
    "error_rate": None,
    "accuracy": None,  # from devices' ground-truth feedback (Agent.feedback)
}
ALPHA = 0.05


@dataclass
class Experiments:
    db: Database
    artifacts: ArtifactStore
    devices: DeviceRegistry
    telemetry: TelemetryIntake
    min_devices: int = 5
    min_calls: int = 1000

    def create(
        self, a_spec: str, b_spec: str, split: float, selector_text: str, metrics: list[str], now: float
    ) -> dict:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown or not metrics:
            raise FleetError(f"unknown experiment metric(s) {unknown or metrics}", f"metrics: {', '.join(METRICS)}")
        if not 0 < split < 100:
            raise FleetError(
                f"split {split} must be between 0 and 100 (the share of devices on B)",
                "give a percent above 0 and below 100, e.g. 50 for half the devices on B",
            )
        a, b = self._one(a_spec), self._one(b_spec)
        if a["target"] != b["target"]:
            raise FleetError(
                f"arms are built for different targets ({a['target']}, {b['target']})",
                "compare two builds for one target: compile and publish both for it (see `edgeml fleet artifacts`)",
            )
        devices = [d for d in self.devices.select(parse_selector(selector_text)) if d["target"] == a["target"]]
        if len(devices) < 2 * self.min_devices:
            raise FleetError(
                f"selector {selector_text!r} gives {len(devices)} compatible device(s); an experiment "
                f"needs at least {2 * self.min_devices} to reach a verdict",
                f"widen the selector to more {a['target']} devices (see `edgeml fleet devices`), "
                "or roll the new version out in stages with `edgeml fleet rollout create` instead",
            )
        refuse_claimed(self.db, [d["id"] for d in devices], selector_text)
        exp_id = "e-" + uuid.uuid4().hex[:10]
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO experiments (id, a_sha, b_sha, split, selector, metrics, created_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (exp_id, a["sha256"], b["sha256"], split, selector_text, json.dumps(metrics), now),
            )
            for d in devices:
                arm = arm_of(exp_id, d["id"], split)
                tx.execute("INSERT INTO experiment_devices VALUES (?,?,?)", (exp_id, d["id"], arm))
                sha = b["sha256"] if arm == "B" else a["sha256"]
                DesiredStates.assign(tx, d["id"], sha, exp_id, True, now)
        return self.report(exp_id)

    def stop(self, exp_id: str, keep: str | None, now: float) -> dict[str, Any]:
        """End the experiment: its devices are free for rollouts again. With `keep` ("A" or "B") every one of
        its devices is moved to that arm's version; without it each stays on the version it runs."""
        if keep not in (None, "A", "B"):
            raise FleetError(
                f"keep {keep!r} is not an arm", "keep A or B, or leave it out to leave each device on its arm"
            )
        with self.db.transaction() as tx:
            row = tx.execute("SELECT * FROM experiments WHERE id=?", (exp_id,)).fetchone()
            if row is None:
                raise FleetNotFoundError(f"no experiment {exp_id}", "check `edgeml fleet experiment list`")
            if row["ended_at"] is not None:
                raise FleetConflictError(
                    f"experiment {exp_id} already ended ({row['outcome']})",
                    f"nothing to stop; its verdict is in `edgeml fleet experiment report {exp_id}`",
                )
            outcome = f"kept {keep}" if keep else "stopped; devices stay on their arms"
            tx.execute("UPDATE experiments SET ended_at=?, outcome=? WHERE id=?", (now, outcome, exp_id))
            if keep:
                sha = row[f"{keep.lower()}_sha"]
                for (device_id,) in tx.execute(
                    "SELECT device_id FROM experiment_devices WHERE experiment_id=? AND arm!=?", (exp_id, keep)
                ).fetchall():
                    DesiredStates.assign(tx, device_id, sha, exp_id, True, now)
        return self.report(exp_id)

    def list(self) -> list[dict[str, Any]]:
        """Every experiment, newest first."""
        return [
            dict(r)
            for r in self.db.query(
                "SELECT x.id, x.a_sha, x.b_sha, x.split, x.selector, x.created_at, x.ended_at, x.outcome, "
                "COUNT(d.device_id) devices FROM experiments x LEFT JOIN experiment_devices d "
                "ON d.experiment_id = x.id GROUP BY x.id ORDER BY x.created_at DESC"
            )
        ]

    def _one(self, spec: str) -> dict[str, Any]:
        found = self.artifacts.find(spec)
        if len(found) > 1:
            targets = ", ".join(sorted(a["target"] for a in found))
            raise FleetError(
                f"{spec} exists for several targets ({targets})",
                "name the build by sha256 (see `edgeml fleet artifacts`)",
            )
        return found[0]

    def report(self, exp_id: str) -> dict[str, Any]:
        rows = self.db.query("SELECT * FROM experiments WHERE id=?", (exp_id,))
        if not rows:
            raise FleetNotFoundError(f"no experiment {exp_id}", "check the id that `experiment create` printed")
        e = dict(rows[0])
        arms = {
            arm: [
                r[0]
                for r in self.db.query(
                    "SELECT device_id FROM experiment_devices WHERE experiment_id=? AND arm=?", (exp_id, arm)
                )
            ]
            for arm in ("A", "B")
        }
        aggs = {
            arm: self.telemetry.aggregate([e[f"{arm.lower()}_sha"]], ids, since=e["created_at"])
            for arm, ids in arms.items()
        }
        metrics = {m: self._compare(m, aggs["A"], aggs["B"]) for m in json.loads(e["metrics"])}
        return {
            "id": exp_id,
            "a_sha": e["a_sha"],
            "b_sha": e["b_sha"],
            "split": e["split"],
            "state": "ended" if e["ended_at"] is not None else "running",
            "outcome": e["outcome"],
            "arms": {
                arm: {"devices": len(ids), "reporting": aggs[arm].devices, "calls": aggs[arm].calls}
                for arm, ids in arms.items()
            },
            "metrics": metrics,
        }

    def _compare(self, metric: str, a, b) -> dict[str, Any]:
        if metric == "error_rate":
            return two_proportions(a.errors, a.calls, b.errors, b.calls, self.min_calls)
        if metric == "accuracy":
            return two_proportions(a.correct, a.labelled, b.correct, b.labelled, self.min_calls, higher_is_better=True)
        q = METRICS[metric]
        va = [v for s in a.sketches if (v := s.quantile(q)) is not None]
        vb = [v for s in b.sketches if (v := s.quantile(q)) is not None]
        return mann_whitney(va, vb, self.min_devices)


def arm_of(exp_id: str, device_id: str, split: float) -> str:
    bucket = int(hashlib.sha256(f"{exp_id}:{device_id}".encode()).hexdigest()[:8], 16) % 100
    return "B" if bucket < split else "A"


def mann_whitney(a: list[float], b: list[float], min_n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"test": "Mann-Whitney U, two-sided, per-device values", "n_a": len(a), "n_b": len(b)}
    if min(len(a), len(b)) < min_n:
        return out | {"verdict": f"insufficient data: need ≥ {min_n} reporting devices per arm"}
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    diff = float(np.median(b) - np.median(a))
    rng = np.random.default_rng(0)
    boots = [np.median(rng.choice(b, len(b))) - np.median(rng.choice(a, len(a))) for _ in range(2000)]
    lo, hi = (float(x) for x in np.percentile(boots, [2.5, 97.5]))
    return out | {
        "a": float(np.median(a)),
        "b": float(np.median(b)),
        "difference": diff,
        "ci95": [lo, hi],
        "p_value": p,
        "verdict": _verdict(p, diff, lower_is_better=True),
    }


def two_proportions(
    ea: int, na: int, eb: int, nb: int, min_calls: int, higher_is_better: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {"test": "two-proportion z-test, two-sided", "calls_a": na, "calls_b": nb}
    if min(na, nb) < min_calls:
        return out | {"verdict": f"insufficient data: need ≥ {min_calls} calls per arm"}
    pa, pb = ea / na, eb / nb
    pooled = (ea + eb) / (na + nb)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb)) or 1e-12
    z = (pb - pa) / se0
    p = math.erfc(abs(z) / math.sqrt(2))
    se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    diff = pb - pa
    return out | {
        "a": pa,
        "b": pb,
        "difference": diff,
        "ci95": [diff - 1.96 * se, diff + 1.96 * se],
        "p_value": p,
        "verdict": _verdict(p, diff, lower_is_better=not higher_is_better),
    }


def _verdict(p: float, diff: float, lower_is_better: bool) -> str:
    if p >= ALPHA:
        return f"no significant difference (p = {p:.3g} ≥ {ALPHA})"
    better = (diff < 0) == lower_is_better
    return f"B is {'better' if better else 'worse'} (p = {p:.3g})"

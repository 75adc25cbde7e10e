"""The exposed waves → pass, fail (which gate, by how much) or undecided (which gate lacks data).

Metrics come from the exposed devices (waves so far) on the new artifact, the baseline from the rollout's
devices on the model they ran before (telemetry from an hour before the rollout on), and drift from the
new artifact's manifest reference profile.

A wave is judged on the devices that report, not on the last one to: before it settled (`final=False`) a
gate fails as soon as it is violated whatever the waiting devices do — install_success even if every one
of them installs, a telemetry gate measured on at least the plan's `min_sample` reporting devices (or all
exposed ones, when fewer) — and never passes. A settled wave (`final=True`) is judged as it stands, on
the devices that report (at least `min_sample`, or every device that installed, when fewer); a device that
did not report by its deadline is a failed install there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from edgeml.fleet.database import Database
from edgeml.fleet.lifecycles import SETTLED, ExecutionState
from edgeml.fleet.rollout_plan import RolloutPlan
from edgeml.fleet.telemetry_intake import TelemetryIntake

__all__ = ["Verdict", "WaveHealth"]

BASELINE_LOOKBACK_S = 3600.0
_QUANTILES = {"p50_latency": 0.5, "p90_latency": 0.9, "p95_latency": 0.95, "p99_latency": 0.99}


@dataclass
class Verdict:
    failed: bool = False
    undecided: bool = False
    reason: str = ""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class WaveHealth:
    db: Database
    telemetry: TelemetryIntake

    def measure(self, r: dict[str, Any]) -> dict[str, Any]:
        """Every gate metric for rollout row `r` up to its current wave: value and baseline."""
        execs = self.db.query(
            "SELECT device_id, state, previous_sha FROM executions WHERE rollout_id=? AND wave<=?", (r["id"], r["wave"])
        )
        exposed = [e["device_id"] for e in execs]
        previous = sorted(
            {
                row[0]
                for row in self.db.query(
                    "SELECT previous_sha FROM executions WHERE rollout_id=? AND previous_sha IS NOT NULL", (r["id"],)
                )
            }
        )
        new = self.telemetry.aggregate([r["artifact_sha"]], exposed, since=r["created_at"])
        base = self.telemetry.aggregate(previous, None, since=r["created_at"] - BASELINE_LOOKBACK_S)
        manifest = json.loads(
            self.db.query("SELECT manifest FROM artifacts WHERE sha256=?", (r["artifact_sha"],))[0][0]
        )
        succeeded = sum(e["state"] == ExecutionState.SUCCEEDED for e in execs)
        waiting = sum(e["state"] not in SETTLED for e in execs)
        values: dict[str, Any] = {
            "install_success": (succeeded / len(execs) if execs else None, None),
            "error_rate": (new.error_rate, base.error_rate),
            "psi": (new.worst_psi(manifest.get("reference_profile", {})), None),
        }
        values |= {m: (new.latency(q), base.latency(q)) for m, q in _QUANTILES.items()}
        # NOTE: install_success once every waiting device installs: an early verdict's best case
        best = (succeeded + waiting) / len(execs) if execs else None
        return {
            "values": values,
            "install_success_best": best,
            "devices_exposed": len(execs),
            "devices_installed": succeeded,
            "devices_waiting": waiting,
            "devices_reporting": new.devices,
            "baseline_devices": base.devices,
        }

    def judge(self, r: dict[str, Any], plan: RolloutPlan, final: bool = True) -> Verdict:
        """Every gate on the waves exposed so far; `final`: the wave settled, so it may pass (see the module)."""
        measured = self.measure(r)
        verdict = Verdict(values=measured, undecided=not final, reason="" if final else "the wave has not settled")
        # NOTE: once settled, those that installed are all that can report (a timed-out device failed its install)
        sample = min(plan.min_sample, measured["devices_installed"] if final else measured["devices_exposed"])
        for gate in plan.gates:
            value, baseline = measured["values"][gate.metric]
            if gate.metric == "install_success" and not final and gate.op in (">=", ">"):
                value = measured["install_success_best"]
            elif gate.metric != "install_success" and measured["devices_reporting"] < sample:
                value = None  # NOTE: too few devices report to judge on yet
            holds = gate.holds(value, baseline)
            if holds is False:
                limit = gate.limit(baseline)
                n = measured["devices_reporting"] if gate.metric != "install_success" else measured["devices_exposed"]
                where = f"{n} device(s)" + ("" if final else f", {measured['devices_waiting']} still waiting")
                return Verdict(
                    True, False, f"{gate.text} (measured {value:.4g}, limit {limit:.4g}, on {where})", measured
                )
            if holds is None and final:
                verdict.undecided, verdict.reason = True, f"{gate.text} (too few devices report: fewer than {sample})"
        return verdict

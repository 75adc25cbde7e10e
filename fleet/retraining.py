"""Sustained input drift across devices → retraining requests with their evidence.

Every scan looks at the last `window_s` of telemetry per artifact: each device's drift counts are summed
per input feature and compared with the manifest's reference bins (PSI). A feature whose PSI exceeds
`psi_threshold` on at least `min_devices` devices (and at least `min_share` of the reporting devices)
opens a request, or extends the open one: which feature, which devices and how far each drifted, and
the time range. `export` writes the evidence as a dataset folder for the retraining job.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeml.artifact.npz import write_npz
from edgeml.drift import psi
from edgeml.fleet.database import Database, FleetError, FleetNotFoundError

__all__ = ["Retraining"]


@dataclass
class Retraining:
    db: Database
    psi_threshold: float = 0.25
    min_devices: int = 3
    min_share: float = 0.2
    window_s: float = 3600.0

    def scan(self, now: float) -> list[str]:
        """Open or extend requests from recent telemetry; return the ids touched."""
        touched = []
        for (sha,) in self.db.query(
            "SELECT DISTINCT artifact_sha FROM telemetry WHERE received_at >= ? AND artifact_sha IS NOT NULL",
            (now - self.window_s,),
        ):
            profile = self._profile(sha)
            drifted, reporting = self._drifted(sha, profile, now)
            for (name, feature), devices in drifted.items():
                if len(devices) >= self.min_devices and len(devices) >= self.min_share * reporting:
                    touched.append(self._upsert(sha, name, feature, devices, now))
        return touched

    def _profile(self, sha: str) -> dict[str, Any]:
        rows = self.db.query("SELECT manifest FROM artifacts WHERE sha256=?", (sha,))
        return json.loads(rows[0][0]).get("reference_profile", {}) if rows else {}

    def _drifted(self, sha: str, profile: dict, now: float) -> tuple[dict[tuple[str, int], dict[str, float]], int]:
        per_device: dict[str, dict[tuple[str, int], list[float]]] = {}
        for r in self.db.query(
            "SELECT device_id, drift FROM telemetry WHERE artifact_sha=? AND received_at >= ?",
            (sha, now - self.window_s),
        ):
            sums = per_device.setdefault(r["device_id"], {})
            for name, features in json.loads(r["drift"]).items():
                for i, counts in features.items():
                    acc = sums.setdefault((name, int(i)), [0.0] * len(counts))
                    sums[(name, int(i))] = [a + c for a, c in zip(acc, counts, strict=False)]
        drifted: dict[tuple[str, int], dict[str, float]] = {}
        for device, sums in per_device.items():
            for (name, i), counts in sums.items():
                ref = profile.get("inputs", {}).get(name, {}).get("features", [])
                if i < len(ref) and len(ref[i]["counts"]) == len(counts) and sum(counts) > 0:
                    score = psi(ref[i]["counts"], counts)
                    if score > self.psi_threshold:
                        drifted.setdefault((name, i), {})[device] = round(score, 4)
        return drifted, len(per_device)

    def _upsert(self, sha: str, name: str, feature: int, devices: dict[str, float], now: float) -> str:
        with self.db.transaction() as tx:
            row = tx.execute(
                "SELECT id, devices, max_psi, state FROM retrain_requests WHERE artifact_sha=? AND input=? "
                "AND feature=?",
                (sha, name, feature),
            ).fetchone()
            if row is None:
                rid = "rt-" + uuid.uuid4().hex[:10]
                tx.execute(
                    "INSERT INTO retrain_requests VALUES (?,?,?,?,?,?,?,?, 'open')",
                    (rid, sha, name, feature, json.dumps(devices), max(devices.values()), now, now),
                )
                return rid
            if row["state"] != "open":  # NOTE: resolved by a newer release; that release's drift is its own request
                return row["id"]
            merged = json.loads(row["devices"]) | devices
            tx.execute(
                "UPDATE retrain_requests SET devices=?, max_psi=?, last_seen=? WHERE id=?",
                (json.dumps(merged), max(row["max_psi"], *devices.values()), now, row["id"]),
            )
            return row["id"]

    def list(self) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM retrain_requests ORDER BY last_seen DESC")
        return [dict(r) | {"devices": json.loads(r["devices"])} for r in rows]

    def export(self, request_id: str, out: str | os.PathLike[str]) -> Path:
        """A dataset folder: request.json (the evidence) + drift.npz (per-device histograms and the
        reference counts over the same bins)."""
        found = [r for r in self.list() if r["id"] == request_id]
        if not found:
            raise FleetNotFoundError(f"no retraining request {request_id}", "see `edgeml fleet retrain list`")
        req, folder = found[0], Path(out)
        if folder.exists():
            raise FleetError(f"{folder} exists", "choose another --out")
        folder.mkdir(parents=True)
        ref = self._profile(req["artifact_sha"])["inputs"][req["input"]]["features"][req["feature"]]
        arrays = {"reference_counts": ref["counts"], "bin_edges": ref["edges"]}
        for device in req["devices"]:
            arrays[f"device/{device}"] = self._device_counts(req, device)
        write_npz(folder / "drift.npz", {k: np.asarray(v) for k, v in arrays.items()})
        (folder / "request.json").write_text(json.dumps(req, indent=2) + "\n")
        return folder

    def _device_counts(self, req: dict[str, Any], device: str) -> list[float]:
        total: list[float] = []
        for (drift,) in self.db.query(
            "SELECT drift FROM telemetry WHERE device_id=? AND artifact_sha=? AND received_at BETWEEN ? AND ?",
            (device, req["artifact_sha"], req["first_seen"] - self.window_s, req["last_seen"]),
        ):
            counts = json.loads(drift).get(req["input"], {}).get(str(req["feature"]))
            if counts:
                total = [a + c for a, c in zip(total or [0.0] * len(counts), counts, strict=False)]
        return total

    def resolve(self, request_id: str, resolution: str = "resolved") -> bool:
        """Close an open request (the retraining flow calls this once its release reached the fleet); False when
        it was not open (already resolved: nothing changes, so a re-run of the flow is harmless)."""
        with self.db.transaction() as tx:
            cur = tx.execute(
                "UPDATE retrain_requests SET state=? WHERE id=? AND state='open'", (resolution, request_id)
            )
            return cur.rowcount == 1

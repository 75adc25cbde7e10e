"""The fleet service: device registry, content-addressed artifact store, staged rollouts with health gates
and automatic revert, telemetry intake, over MQTT (see docs/protocol.md). State lives in SQLite (one machine)
or PostgreSQL (several instances, one of them leading: fleet/instance_lease.py)."""

from __future__ import annotations

from edgeml.fleet.database import FleetError
from edgeml.fleet.fleet_service import Fleet, FleetService
from edgeml.fleet.rollout_plan import RolloutPlan

__all__ = ["Fleet", "FleetError", "FleetService", "RolloutPlan"]

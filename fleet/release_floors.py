"""Each device's anti-rollback floor, as the fleet signs it into a desired state (`min_release`): the last
release the fleet declared good for that device.

    declared good, newest first:
      a completed rollout the device succeeded in  → that rollout's release
      an aborted rollout that exposed the device   → the release it was sent back to (the model it ran before)
      neither yet                                  → the release it ran when the fleet first exposed it
    nothing known (the fleet never moved it)       → no floor is signed: the device keeps its own (its highest
                                                     committed release)

So after 2.0.0 is aborted and its devices are reverted to 1.9.0, the floor is 1.9.0 and the hotfix 1.9.1
installs, also on a device that was offline during the revert. A desired state that takes a device lower —
a revert, or a rollout the operator created with `--allow-rollback` — signs min(floor, its release): that
is how an operator's decision lowers the floor (recorded in the rollout's events). A rollout whose release
is below any of its devices' floors is refused at creation without `--allow-rollback`. Replays stay refused
by the desired state's sequence, whatever the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.fleet.database import Database

__all__ = ["Floor", "ReleaseFloors"]

_HISTORY = """
SELECT r.id, r.state AS rollout_state, e.state, e.exposed_at, a.name || '@' || a.version AS artifact,
       a.release, p.name || '@' || p.version AS previous, p.release AS previous_release
FROM executions e JOIN rollouts r ON r.id = e.rollout_id JOIN artifacts a ON a.sha256 = r.artifact_sha
LEFT JOIN artifacts p ON p.sha256 = e.previous_sha
WHERE e.device_id = ? ORDER BY r.updated_at DESC, r.created_at DESC
"""


@dataclass(frozen=True)
class Floor:
    release: int
    source: str  # where it comes from, for messages: "digits@1.9.0, reverted to when rollout r-… was aborted"


class ReleaseFloors:
    def __init__(self, db: Database) -> None:
        self.db = db

    def floor(self, device_id: str) -> Floor | None:
        """The last release the fleet declared good for `device_id` (see the module), or None."""
        rows = self.db.query(_HISTORY, (device_id,))
        for r in rows:
            if r["rollout_state"] == "completed" and r["state"] == "succeeded":
                return Floor(r["release"], f"{r['artifact']}, installed by rollout {r['id']} (completed)")
            exposed = r["exposed_at"] is not None and r["state"] not in ("pending", "cancelled")
            if r["rollout_state"] == "aborted" and exposed and r["previous_release"] is not None:
                return Floor(r["previous_release"], f"{r['previous']}, reverted to when rollout {r['id']} was aborted")
        first = next((r for r in reversed(rows) if r["exposed_at"] is not None), None)
        if first is not None and first["previous_release"] is not None:
            return Floor(first["previous_release"], f"{first['previous']}, which it ran before rollout {first['id']}")
        return None

    def signed(self, device_id: str, release: int, allow_rollback: bool) -> int | None:
        """The `min_release` to sign into a desired state of `release` for the device: its floor, lowered to
        `release` when the desired state is a signed rollback (a revert, an --allow-rollback rollout)."""
        floor = self.floor(device_id)
        if floor is None:
            return None
        return min(floor.release, release) if allow_rollback else floor.release

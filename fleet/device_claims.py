"""Which devices a running rollout or experiment already steers: a device follows one plan at a time.

Two plans writing one device's desired state would undo each other (and an abort would revert a device
another plan had moved on). A rollout holds its devices while it runs or is paused, and a device it is
reverting until the revert ends; an experiment holds its devices until it is stopped. Creating a
rollout or an experiment over held devices is refused with who holds them and what to do — except that a
new rollout may take over a device an aborted rollout still reverts (offline since the abort): its desired
state supersedes the revert, and the revert's execution ends `superseded` when the new one exposes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from edgeml.fleet.database import Database, FleetConflictError

__all__ = ["claims", "refuse_claimed"]


def claims(db: Database, reverts: bool = True) -> dict[str, str]:
    """device id → the plan holding it ("rollout r-…", "experiment e-…"); without `reverts`, an aborted
    rollout's devices still reverting are not counted."""
    held: dict[str, str] = {}
    reverting = " OR e.state = 'reverting'" if reverts else ""
    for row in db.query(
        "SELECT e.device_id, r.id FROM executions e JOIN rollouts r ON r.id = e.rollout_id "
        f"WHERE r.state IN ('running', 'paused'){reverting}"
    ):
        held[row[0]] = f"rollout {row[1]}"
    for row in db.query(
        "SELECT d.device_id, x.id FROM experiment_devices d JOIN experiments x ON x.id = d.experiment_id "
        "WHERE x.ended_at IS NULL"
    ):
        held[row[0]] = f"experiment {row[1]}"
    return held


def refuse_claimed(db: Database, device_ids: Iterable[str], selector: str, take_over_reverts: bool = False) -> None:
    """Raise FleetConflictError when any of `device_ids` is held by a running rollout or experiment (or by an
    aborted rollout's revert, unless `take_over_reverts`: a new rollout supersedes those)."""
    held = claims(db, reverts=not take_over_reverts)
    owners = Counter(held[d] for d in device_ids if d in held)
    if not owners:
        return
    who = ", ".join(f"{n} in {owner}" for owner, n in owners.most_common())
    raise FleetConflictError(
        f"selector {selector!r}: {sum(owners.values())} device(s) already follow another plan ({who})",
        "wait for it to finish, pause/abort the rollout or `edgeml fleet experiment stop` the experiment, "
        "or narrow the selector",
    )

"""Devices as the fleet knows them: capabilities from hello, state and model from status, last seen; tags
from the operator (a hello or status never touches them)."""

from __future__ import annotations

import json
from typing import Any

from edgeml.fleet.database import Database, FleetError, FleetNotFoundError
from edgeml.fleet.device_tags import TagChange
from edgeml.fleet.selector import Selector
from edgeml.protocol import Hello, Status

__all__ = ["DeviceRegistry"]


class DeviceRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    def on_hello(self, hello: Hello, now: float) -> None:
        """Register a device, or refresh a known one's capabilities. A hello is retained: the broker hands it out
        again to every fleet that subscribes (a restart, a re-request of a lost hello) long after the device said
        it, so for a known device it never says which model it runs now or whether it is online — its (newer,
        also retained) status does; a stale hello overwriting them made a restarted fleet expose a device with no
        model to revert to."""
        current = hello.current
        with self.db.transaction(exclusive=False) as tx:  # NOTE: one atomic upsert
            tx.execute(
                """INSERT INTO devices (id, target, runtimes, agent_version, free_storage, current_sha, current_version,
                       current_release, online, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,1,?,?)
                   ON CONFLICT(id) DO UPDATE SET target=excluded.target, runtimes=excluded.runtimes,
                       agent_version=excluded.agent_version, free_storage=excluded.free_storage""",
                (
                    hello.device_id,
                    hello.target,
                    json.dumps(dict(hello.runtimes)),
                    hello.agent_version,
                    hello.free_storage_bytes,
                    current.sha256 if current else None,
                    current.version if current else None,
                    current.release if current else None,
                    now,
                    now,
                ),
            )

    def on_status(self, device_id: str, status: Status, now: float) -> bool:
        """Record a status; False if the device never said hello (unknown devices are not registered here)."""
        model = status.slots.get(status.active) if status.active else None
        if not status.online and not status.slots:
            # NOTE: a last will or goodbye that names no slots says "offline", not "runs nothing": keep the model
            with self.db.transaction(exclusive=False) as tx:
                sql = "UPDATE devices SET state=?, online=0, last_seen=? WHERE id=?"
                return tx.execute(sql, (status.state, now, device_id)).rowcount == 1
        with self.db.transaction(exclusive=False) as tx:  # NOTE: one UPDATE
            cur = tx.execute(
                """UPDATE devices SET state=?, online=?, last_seen=?, current_sha=?, current_version=?,
                       current_release=? WHERE id=?""",
                (
                    status.state,
                    int(status.online),
                    now,
                    model.sha256 if model else None,
                    model.version if model else None,
                    model.release if model else None,
                    device_id,
                ),
            )
            return cur.rowcount == 1

    def set_tags(self, device_id: str, tags: dict[str, str]) -> None:
        """Replace a device's tags as they are (unchecked: tests and migrations); operators use `change_tags`."""
        with self.db.transaction() as tx:
            tx.execute("UPDATE devices SET tags=? WHERE id=?", (json.dumps(tags, sort_keys=True), device_id))

    def change_tags(self, selector: Selector, change: TagChange) -> dict[str, Any]:
        """Apply `change` to every device `selector` matches, in one transaction; a selector matching no
        device is refused. Returns {selector, matched, changed, devices (after the change)}."""
        with self.db.transaction() as tx:
            devices = [d for d in map(_device, tx.execute("SELECT * FROM devices ORDER BY id")) if selector.matches(d)]
            if not devices:
                raise FleetError(
                    f"selector {selector.text!r} matches 0 device(s)",
                    "check `edgeml fleet devices` and the selector; a device is known once it said hello",
                )
            changed = _retag(tx, devices, change)
        return {"selector": selector.text, "matched": len(devices), "changed": changed, "devices": devices}

    def change_device_tags(self, device_id: str, change: TagChange) -> dict[str, Any]:
        """Apply `change` to one device, named exactly; returns the device after the change."""
        with self.db.transaction() as tx:
            row = tx.execute("SELECT * FROM devices WHERE id=?", (device_id,)).fetchone()
            if row is None:
                raise FleetNotFoundError(f"no device {device_id}", "see `edgeml fleet devices` for the known ids")
            device = _device(row)
            _retag(tx, [device], change)
        return device

    def get(self, device_id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM devices WHERE id=?", (device_id,))
        return _device(rows[0]) if rows else None

    def select(self, selector: Selector | None = None) -> list[dict[str, Any]]:
        devices = [_device(r) for r in self.db.query("SELECT * FROM devices ORDER BY id")]
        return [d for d in devices if selector is None or selector.matches(d)]


def _retag(tx, devices: list[dict[str, Any]], change: TagChange) -> int:
    """Write each device's changed tags (updating the dicts in place); return how many changed."""
    changed = 0
    for d in devices:
        after = change.apply(d["id"], d["tags"])
        if after != d["tags"]:
            tx.execute("UPDATE devices SET tags=? WHERE id=?", (json.dumps(after, sort_keys=True), d["id"]))
            d["tags"], changed = after, changed + 1
    return changed


def _device(row) -> dict[str, Any]:
    d = dict(row)
    d["tags"], d["runtimes"], d["online"] = json.loads(d["tags"]), json.loads(d["runtimes"]), bool(d["online"])
    return d

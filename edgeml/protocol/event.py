"""Device → fleet: one lifecycle step's result with its reason (`edgeml/v1/event`).

`seq` grows by one per event on a device, so the fleet drops the duplicates QoS 1 may deliver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from edgeml.protocol.fields import Fields, header
from edgeml.protocol.kind import Kind

__all__ = ["Event"]

MAX_REASON = 1024


@dataclass(frozen=True)
class Event:
    """`kind`: what happened (download_started, verified, installed, self_test_failed, committed,
    rolled_back, desired_rejected, …); `step`: the lifecycle state it happened in; `ok`: success or not;
    `reason`: why, in words an operator can act on ("" when ok)."""

    KIND: ClassVar[Kind] = Kind.EVENT

    kind: str
    step: str
    ok: bool
    seq: int
    at: int
    reason: str = ""
    artifact: str | None = None
    release: int | None = None
    rollout_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **header(self.KIND),
            "kind": self.kind,
            "step": self.step,
            "ok": self.ok,
            "seq": self.seq,
            "at": self.at,
            "reason": self.reason,
            "artifact": self.artifact,
            "release": self.release,
            "rollout_id": self.rollout_id,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Event:
        f = Fields.payload(obj, cls.KIND)
        return cls(
            kind=f.token("kind"),
            step=f.token("step"),
            ok=f.flag("ok"),
            seq=f.integer("seq"),
            at=f.integer("at"),
            reason=f.text("reason", MAX_REASON) if f.present("reason") else "",
            artifact=f.sha256("artifact") if f.present("artifact") else None,
            release=f.integer("release") if f.present("release") else None,
            rollout_id=f.ident("rollout_id") if f.present("rollout_id") else None,
        )

"""Device → fleet, retained: lifecycle state, model slots, online flag (`edgeml/v1/status`).

The agent sets `as_offline()` of its status as the MQTT last will, so the broker marks it offline (and
keeps the slots it last reported) when the connection drops without a goodbye.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from edgeml.protocol.fields import TOKEN_PATTERN, Fields, check_text, header
from edgeml.protocol.kind import Kind
from edgeml.protocol.model_ref import ModelRef
from edgeml.protocol.protocol_error import ProtocolError

__all__ = ["Status"]

MAX_SLOTS = 4


@dataclass(frozen=True)
class Status:
    """`state` is the agent's lifecycle state (idle, downloading, verifying, installing, self_test,
    committed, rolled_back, …); `slots` maps slot name → model or None; `active` names the serving slot;
    `desired_sequence` is the last desired state the device accepted; `at` is epoch seconds."""

    KIND: ClassVar[Kind] = Kind.STATUS

    state: str
    online: bool
    at: int
    slots: Mapping[str, ModelRef | None] = field(default_factory=dict)
    active: str | None = None
    desired_sequence: int | None = None

    @property
    def version(self) -> str | None:
        """The version of the model serving now, if any."""
        model = self.slots.get(self.active) if self.active else None
        return model.version if model else None

    def as_offline(self) -> Status:
        return dataclasses.replace(self, online=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            **header(self.KIND),
            "state": self.state,
            "online": self.online,
            "at": self.at,
            "slots": {name: m.to_dict() if m else None for name, m in self.slots.items()},
            "active": self.active,
            "desired_sequence": self.desired_sequence,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Status:
        f = Fields.payload(obj, cls.KIND)
        slots = Fields(f.mapping("slots", MAX_SLOTS), "status.slots")
        names = [check_text(name, "status.slots key", 32, TOKEN_PATTERN) for name in slots.obj]
        active = f.text("active", 32, TOKEN_PATTERN) if f.present("active") else None
        if active is not None and active not in names:
            raise ProtocolError("invalid_field", f"status.active {active!r} is not one of its slots {names}")
        return cls(
            state=f.token("state"),
            online=f.flag("online"),
            at=f.integer("at"),
            slots={name: ModelRef.read_optional(slots, name) for name in names},
            active=active,
            desired_sequence=f.integer("desired_sequence") if f.present("desired_sequence") else None,
        )

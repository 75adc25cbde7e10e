"""Device → fleet on every connect: who the device is and what it can run (`edgeml/v1/hello`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from edgeml.protocol.fields import Fields, check_text, header
from edgeml.protocol.kind import Kind
from edgeml.protocol.model_ref import ModelRef

__all__ = ["Hello"]

MAX_RUNTIMES = 16


@dataclass(frozen=True)
class Hello:
    """Capabilities: target id, runtimes {name: version}, agent version, free storage, current model."""

    KIND: ClassVar[Kind] = Kind.HELLO

    device_id: str
    target: str
    agent_version: str
    free_storage_bytes: int
    runtimes: Mapping[str, str] = field(default_factory=dict)
    current: ModelRef | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **header(self.KIND),
            "device_id": self.device_id,
            "target": self.target,
            "runtimes": dict(self.runtimes),
            "agent_version": self.agent_version,
            "free_storage_bytes": self.free_storage_bytes,
            "current": self.current.to_dict() if self.current else None,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Hello:
        f = Fields.payload(obj, cls.KIND)
        runtimes = f.mapping("runtimes", MAX_RUNTIMES)
        return cls(
            device_id=f.ident("device_id"),
            target=f.ident("target"),
            agent_version=f.text("agent_version", 64),
            free_storage_bytes=f.integer("free_storage_bytes"),
            runtimes={
                check_text(k, "hello.runtimes key", 64): check_text(v, f"hello.runtimes.{k}", 64)
                for k, v in runtimes.items()
            },
            current=ModelRef.read_optional(f, "current"),
        )

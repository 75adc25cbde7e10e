"""The committed model as the predict path uses it: one open runtime session, its manifest, the name the
fleet knows it by, and the reference bins its telemetry counts over. Immutable: an install that commits
builds a new one and the agent swaps a single reference, so a predict in flight finishes on the model it
started with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeml.device_agent.telemetry.reference_bins import ReferenceBins
from edgeml.device_agent.update.agent_state import manifest_digest
from edgeml.device_agent.update.installer import ActiveModel
from edgeml.protocol import ModelRef
from edgeml.runtimes import Session, open_session

__all__ = ["ServingModel"]


@dataclass(frozen=True, eq=False)
class ServingModel:
    session: Session
    manifest: dict[str, Any]
    model: ModelRef
    slot: str
    bins: ReferenceBins

    @classmethod
    def open(cls, active: ActiveModel, slot: str, artifact_sha256: str | None, threads: int = 1) -> ServingModel:
        """Load the active model; `artifact_sha256` is the digest of the artifact file the fleet sent (when
        known; else the manifest digest names it). Raises what the runtime raises on an unloadable model."""
        manifest = active.manifest
        session = open_session(manifest["target"]["runtime"], active.model_path, threads=threads)
        sha = artifact_sha256 or manifest_digest(manifest)
        model = ModelRef(manifest["name"], manifest["version"], manifest["release"], sha)
        return cls(session, manifest, model, slot, ReferenceBins.from_manifest(manifest))

    def describe(self) -> str:
        return f"{self.model.name} {self.model.version} (release {self.model.release}, slot {self.slot})"

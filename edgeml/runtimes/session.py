"""The interface every runtime adapter implements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from edgeml.signature import ModelSignature

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Session"]


class Session(Protocol):
    runtime: str
    signature: ModelSignature

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one inference; `feeds` maps input names to arrays. Returns output name → array."""
        ...

"""`--prune KIND:RATIO[:SCOPE]` → a checked PruneSpec.

channels:0.3              remove 30 % of the output channels of every prunable layer (torch-pruning); on a
                          transformer, 30 % of each attention layer's heads (whole heads) and of its
                          feed-forward channels, the hidden size unchanged (see attention_heads.py)
magnitude:0.5             zero the 50 % smallest weights, ranked over all layers together (global L1)
magnitude:0.5:per-layer   zero the 50 % smallest weights of each layer
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.errors import EdgemlError

__all__ = ["PruneSpec"]

_KINDS = ("channels", "magnitude")
_SCOPES = {"channels": ("per-layer",), "magnitude": ("global", "per-layer")}
_MAX_RATIO = {"channels": 0.9, "magnitude": 0.99}


@dataclass(frozen=True)
class PruneSpec:
    kind: str  # "channels" | "magnitude"
    ratio: float
    scope: str

    @classmethod
    def parse(cls, text: str) -> PruneSpec:
        parts = text.strip().split(":")
        kind = parts[0]
        if kind not in _KINDS or len(parts) not in (2, 3):
            raise EdgemlError(
                f"--prune {text!r} is not KIND:RATIO[:SCOPE]",
                "use channels:0.3 (structured), magnitude:0.5 (unstructured, global) or magnitude:0.5:per-layer",
            )
        try:
            ratio = float(parts[1])
        except ValueError:
            raise EdgemlError(f"--prune {text!r}: ratio {parts[1]!r} is not a number") from None
        if not 0 < ratio <= _MAX_RATIO[kind]:
            raise EdgemlError(
                f"--prune {text!r}: ratio {ratio:g} is out of range for {kind} pruning (0 < ratio ≤ "
                f"{_MAX_RATIO[kind]:g})",
                "the ratio is the share removed: 0.3 removes 30 %",
            )
        scope = parts[2] if len(parts) == 3 else _SCOPES[kind][0]
        if scope not in _SCOPES[kind]:
            raise EdgemlError(f"--prune {text!r}: {kind} pruning takes scope {' or '.join(_SCOPES[kind])}")
        return cls(kind, ratio, scope)

    def __str__(self) -> str:
        return f"{self.kind}:{self.ratio:g}:{self.scope}"

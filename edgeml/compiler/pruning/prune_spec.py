"""`--prune KIND:RATIO[:SCOPE]` → a checked PruneSpec.

channels:0.3              remove 30 % of the output channels of every prunable layer (torch-pruning); on a
                          transformer, 30 % of each attention layer's heads (whole heads) and of its
                          feed-forward channels, the hidden size unchanged (see attention_heads.py)
channels:macs=0.5         channel pruning to a compute budget: the smallest ratio whose pruned model needs at
                          most 50 % of the original's multiply-accumulates (found by bisection, see
                          prune_model.py), the same head/channel rules as channels:R
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
    ratio: float  # for a MAC budget: the largest ratio it may take (_MAX_RATIO)
    scope: str
    macs: float | None = None  # channels only: the share of the original MACs the pruned model may keep

    @classmethod
    def parse(cls, text: str) -> PruneSpec:
        parts = text.strip().split(":")
        kind = parts[0]
        if kind not in _KINDS or len(parts) not in (2, 3):
            raise EdgemlError(
                f"--prune {text!r} is not KIND:RATIO[:SCOPE]",
                "use channels:0.3 (structured), channels:macs=0.5 (structured, to half the compute), "
                "magnitude:0.5 (unstructured, global) or magnitude:0.5:per-layer",
            )
        if parts[1].startswith("macs="):
            return cls._mac_budget(text, kind, parts)
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

    @classmethod
    def _mac_budget(cls, text: str, kind: str, parts: list[str]) -> PruneSpec:
        if kind != "channels" or len(parts) != 2:
            raise EdgemlError(
                f"--prune {text!r}: a MAC budget takes channel pruning, channels:macs=SHARE",
                "use channels:macs=0.5 (at most half the original multiply-accumulates)",
            )
        try:
            share = float(parts[1].removeprefix("macs="))
        except ValueError:
            raise EdgemlError(f"--prune {text!r}: {parts[1]!r} is not macs=NUMBER") from None
        if not 0 < share < 1:
            raise EdgemlError(
                f"--prune {text!r}: the MAC share {share:g} is out of range (0 < share < 1)",
                "the share is what the pruned model keeps: macs=0.5 keeps at most half the compute",
            )
        return cls(kind, _MAX_RATIO[kind], _SCOPES[kind][0], share)

    def __str__(self) -> str:
        if self.macs is not None:
            return f"{self.kind}:macs={self.macs:g}"
        return f"{self.kind}:{self.ratio:g}:{self.scope}"

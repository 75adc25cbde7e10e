"""Torch module → a copy whose smallest-magnitude weights are zero (unstructured), made permanent.

Every conv and linear weight (any parameter named `weight` with ≥ 2 dims, so a .pt2 program's module works
too) is ranked by |w|: over all layers together (global: layers that matter less give up more) or within
each layer. The tensors keep their shapes: dense runtimes, ONNX Runtime's CPU provider among them, run the
zeros like any other value, so this buys a smaller *compressed* artifact, not speed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from edgeml.compiler.passes.base import PassConfig, option

__all__ = ["PruneMagnitude", "PruneMagnitudeConfig"]


@dataclass(frozen=True)
class PruneMagnitudeConfig(PassConfig):
    sparsity: float = option(0.5, "share of weights set to zero")
    scope: str = option("global", "global: rank all layers' weights together; per-layer: each layer on its own")


class PruneMagnitude:
    name = "prune-magnitude"
    Config = PruneMagnitudeConfig

    def __init__(self, config: PruneMagnitudeConfig | None = None) -> None:
        self.config = config or PruneMagnitudeConfig()

    def __call__(self, module: Any) -> tuple[Any, dict[str, float]]:
        """(pruned copy, {weight: sparsity})."""
        import torch
        from torch.nn.utils import prune

        model = copy.deepcopy(module)
        targets = [
            (m, "weight")
            for _, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), torch.nn.Parameter) and m.weight.dim() >= 2
        ]
        if self.config.scope == "global":
            prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=self.config.sparsity)
        else:
            for m, name in targets:
                prune.l1_unstructured(m, name, amount=self.config.sparsity)
        for m, name in targets:
            prune.remove(m, name)  # NOTE: permanent: the mask is folded into the weight, no hook left to export
        names = {id(m): n for n, m in model.named_modules()}
        return model, {f"{names[id(m)]}.weight": round(float((m.weight == 0).float().mean()), 4) for m, _ in targets}

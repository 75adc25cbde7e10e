"""nn.Module → the same network with a share of every prunable layer's output channels removed.

torch-pruning's dependency graph keeps coupled layers consistent (a conv's removed output channels are
removed from the next layer's inputs, from BatchNorm, from residual partners). Channels are ranked by the L1
norm of their weights. Layers whose output is a model output keep their width, so the model's signature
does not change.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from edgeml.compiler.passes.base import PassConfig, option
from edgeml.errors import ModelIntakeError

__all__ = ["PruneChannels", "PruneChannelsConfig"]


@dataclass(frozen=True)
class PruneChannelsConfig(PassConfig):
    ratio: float = option(0.3, "share of each layer's output channels removed")
    round_to: int = option(1, "keep channel counts a multiple of this (8 or 16 suits SIMD kernels)")


class PruneChannels:
    name = "prune-channels"
    Config = PruneChannelsConfig

    def __init__(self, config: PruneChannelsConfig | None = None) -> None:
        self.config = config or PruneChannelsConfig()

    def __call__(self, module: Any, examples: tuple[Any, ...]) -> tuple[Any, dict[str, list[int]]]:
        """(pruned copy, {layer: [channels before, after]})."""
        import torch
        import torch_pruning as tp

        if not isinstance(module, torch.nn.Module) or isinstance(module, torch.fx.GraphModule):
            raise ModelIntakeError(
                "channel pruning needs the model as an nn.Module; a .pt2 or TorchScript file holds a traced graph "
                "that torch-pruning cannot rewrite",
                "pass a module:function factory returning (nn.Module, example_inputs), or use --prune magnitude:R",
            )
        model = copy.deepcopy(module).eval()
        before = _widths(model)
        pruner = tp.pruner.MetaPruner(
            model,
            examples,
            importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=self.config.ratio,
            ignored_layers=_output_layers(model, examples),
            round_to=self.config.round_to if self.config.round_to > 1 else None,
        )
        pruner.step()
        after = _widths(model)
        return model.eval(), {name: [before[name], after[name]] for name in before if before[name] != after[name]}


def _widths(model: Any) -> dict[str, int]:
    import torch

    widths = {}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.modules.conv._ConvNd):
            widths[name] = m.out_channels
        elif isinstance(m, torch.nn.Linear):
            widths[name] = m.out_features
    return widths


def _output_layers(model: Any, examples: tuple[Any, ...]) -> list[Any]:
    """Leaf modules whose output is returned by the model as is, else the last conv/linear layer."""
    import torch

    produced: dict[int, Any] = {}
    hooks = [
        m.register_forward_hook(lambda mod, _i, out: produced.__setitem__(id(out), mod))
        for m in model.modules()
        if not list(m.children())
    ]
    try:
        with torch.no_grad():
            result = model(*examples)
    finally:
        for h in hooks:
            h.remove()
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    found = [produced[id(o)] for o in outputs if id(o) in produced]
    if found:
        return found
    last = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.modules.conv._ConvNd))]
    return last[-1:]

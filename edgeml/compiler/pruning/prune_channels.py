"""nn.Module → the same network with a share of every prunable layer's output channels removed.

torch-pruning's dependency graph keeps coupled layers consistent (a conv's removed output channels are
removed from the next layer's inputs, from BatchNorm, from residual partners). Channels are ranked by the L1
norm of their weights. Layers whose output is a model output keep their width, so the model's signature
does not change.

A model with attention modules (see attention_heads.py) is pruned head-aware: the same share of each attention
module's heads is removed as whole heads (query, key and value together, head size kept), the other layers (a
transformer's feed-forward intermediate channels) lose the share of their channels, and the residual stream
keeps its width. The modules' head counts are then set to match, so their reshape into heads still works. Given
calibration inputs, heads and channels are ranked by what they contribute on that data (activation_importance.py),
else by the L1 norm of their weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from edgeml.compiler.passes.base import PassConfig, option
from edgeml.compiler.pruning.activation_importance import ActivationImportance, input_magnitudes
from edgeml.compiler.pruning.attention_heads import Attention, find_attention, residual_layers, set_head_counts
from edgeml.errors import ModelIntakeError

__all__ = ["PruneChannels", "PruneChannelsConfig"]


@dataclass(frozen=True)
class PruneChannelsConfig(PassConfig):
    ratio: float = option(0.3, "share of each layer's output channels (of each attention layer's heads) removed")
    round_to: int = option(1, "keep channel counts a multiple of this (8 or 16 suits SIMD kernels)")


class PruneChannels:
    name = "prune-channels"
    Config = PruneChannelsConfig

    def __init__(self, config: PruneChannelsConfig | None = None) -> None:
        self.config = config or PruneChannelsConfig()

    def __call__(
        self,
        module: Any,
        examples: tuple[Any, ...],
        calibration: list[tuple[Any, ...]] | None = None,
        mask_input: int | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """(pruned copy, {"channels": {layer: [channels before, after]}}), with, where the model has attention,
        "heads": {attention module: [heads before, after]}, "heads_kept": {attention module: why} and
        "importance": how heads and channels were ranked. `calibration`: input batches for that ranking;
        `mask_input`: which input of a batch is the attention mask (padding is not counted)."""
        import torch

        if not isinstance(module, torch.nn.Module) or isinstance(module, torch.fx.GraphModule):
            raise ModelIntakeError(
                "channel pruning needs the model as an nn.Module; a .pt2 or TorchScript file holds a traced graph "
                "that torch-pruning cannot rewrite",
                "pass a module:function factory returning (nn.Module, example_inputs), or use --prune magnitude:R",
            )
        model = copy.deepcopy(module).eval()
        before = _widths(model)
        attentions = find_attention(model)
        ignored = _output_layers(model, examples)
        report: dict[str, Any] = {}
        if attentions:
            magnitudes = input_magnitudes(model, calibration, mask_input) if calibration else None
            report = self._prune_heads(model, examples, attentions, ignored, magnitudes)
        else:
            self._prune(model, examples, ignored)
        after = _widths(model)
        channels = {name: [before[name], after[name]] for name in before if before[name] != after[name]}
        return model.eval(), {"channels": channels} | report

    def _prune(
        self, model: Any, examples: tuple[Any, ...], ignored: list[Any], importance: Any = None, **heads: Any
    ) -> dict[Any, int]:
        """Prunes `model` in place; returns torch-pruning's head counts after pruning (keyed by q/k/v Linear)."""
        import torch_pruning as tp

        pruner = tp.pruner.MetaPruner(
            model,
            examples,
            importance=importance or tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=self.config.ratio,
            ignored_layers=ignored,
            round_to=self.config.round_to if self.config.round_to > 1 else None,
            **heads,
        )
        pruner.step()
        return pruner.num_heads

    def _prune_heads(
        self, model: Any, examples: tuple[Any, ...], attentions: list[Attention], ignored: list[Any], magnitudes
    ) -> dict[str, Any]:
        import torch_pruning as tp

        graph = tp.DependencyGraph().build_dependency(model, example_inputs=examples)
        ignored = ignored + residual_layers(graph, attentions) + [m for a in attentions if a.kept for m in a.layers]
        cut = [a for a in attentions if a.kept is None]
        importance = ActivationImportance(magnitudes) if magnitudes else None
        num_heads = self._prune(
            model, examples, ignored, importance,
            num_heads={p: a.heads for a in cut for p in a.projections},
            prune_num_heads=True,
            prune_head_dims=False,  # NOTE: whole heads go, the head size stays (the code reshapes by it)
            head_pruning_ratio_dict={a.module: _head_ratio(a.heads, self.config.ratio) for a in cut},
        )  # fmt: skip
        kept = {a.name: a.kept for a in attentions if a.kept}
        ranked = "activation: mean |input| x weight column norm on calibration data" if magnitudes else "weight L1 norm"
        return {"heads": set_head_counts(cut, num_heads), "importance": ranked} | ({"heads_kept": kept} if kept else {})


def _head_ratio(heads: int, ratio: float) -> float:
    """The ratio that makes torch-pruning remove round(ratio × heads) heads, at least one kept: it removes
    ceil(r × heads), so r is set half a head below the wanted count."""
    removed = min(heads - 1, int(ratio * heads + 0.5))
    return (removed - 0.5) / heads if removed > 0 else 0.0


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

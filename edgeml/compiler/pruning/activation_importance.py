"""A torch-pruning group + the layers' input magnitudes on calibration data → each channel's importance: what the
channel contributes downstream, mean |input| × the L2 norm of the weight column that reads it (as Wanda ranks
weights), for every Linear in the group that reads the channel. Groups no such Linear reads fall back to the L1
magnitude of the weights.

For a transformer this ranks by what the data does: a head whose context is near zero, or a feed-forward channel
GELU keeps near zero, goes first even where its weights are large. all-MiniLM-L6-v2, before any recovery, eval
cosine vs the unpruned model: 0.80 at 30 % and 0.66 at 50 %, against 0.69 and 0.54 ranked by weight magnitude.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ActivationImportance", "input_magnitudes"]


def input_magnitudes(model: Any, batches: list[tuple[Any, ...]], mask_input: int | None = None) -> dict[Any, Any]:
    """{Linear: mean |input| per input feature} over every position of every batch. `mask_input`: which input
    is an attention mask ([batch, seq], 0 for padding): padded positions of [batch, seq, features] inputs are not
    counted (MiniLM's calibration sentences are mostly padding; counting it ranks by what padding does)."""
    import torch

    sums: dict[Any, list[Any]] = {}
    mask: list[Any] = [None]

    def record(layer: Any, inputs: tuple[Any, ...], _out: Any) -> None:
        x = inputs[0].detach().abs()
        weight = torch.ones(x.shape[:-1], dtype=torch.float64)
        if mask[0] is not None and x.dim() == 3 and tuple(x.shape[:2]) == tuple(mask[0].shape):
            weight = mask[0].to(torch.float64)
        total = sums.setdefault(layer, [torch.zeros(x.shape[-1], dtype=torch.float64), 0.0])
        total[0] += (x.to(torch.float64) * weight[..., None]).reshape(-1, x.shape[-1]).sum(0)
        total[1] += float(weight.sum())

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    try:
        with torch.no_grad():
            for batch in batches:
                mask[0] = None if mask_input is None else batch[mask_input]
                model(*batch)
    finally:
        for h in hooks:
            h.remove()
    return {layer: (s / max(n, 1.0)).float() for layer, (s, n) in sums.items()}


class ActivationImportance:
    """Called by torch-pruning as its `importance`: group → 1-D score per channel of the group's root."""

    def __init__(self, magnitudes: dict[Any, Any]) -> None:
        import torch_pruning as tp

        self.magnitudes = magnitudes
        self.fallback = tp.importance.MagnitudeImportance(p=1)

    def __call__(self, group: Any) -> Any:
        import torch
        import torch_pruning as tp

        score, readers = None, 0
        for i, (dep, idxs) in enumerate(group):
            layer, root_idxs = dep.layer, group[i].root_idxs
            if dep.pruning_fn != tp.prune_linear_in_channels or layer not in self.magnitudes:
                continue
            if any(r is None for r in root_idxs):
                continue
            with torch.no_grad():
                contribution = self.magnitudes[layer][idxs] * layer.weight[:, idxs].norm(dim=0)
            if score is None:
                score = torch.zeros(len(group[0].idxs))
            score.scatter_add_(0, torch.tensor(root_idxs), contribution)
            readers += 1
        return self.fallback(group) if score is None else score / readers

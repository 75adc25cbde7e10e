"""nn.Module → its attention modules, as head-aware channel pruning needs them: which Linear layers are cut by
whole heads (torch-pruning's `num_heads`), which layers carry the residual stream that keeps its width, and,
after pruning, each module's head-count attributes set to match its narrower projections.

Two kinds are recognised:

- Hugging Face style self-attention: a module with query/key/value (or q_proj/k_proj/v_proj, q_lin/k_lin/v_lin)
  nn.Linear children and a head count (`num_attention_heads`, `num_heads` or `n_heads`, else its config's
  `num_attention_heads`). It reshapes each projection into heads × head size, so pruning removes whole heads
  from query, key and value together (and the matching input columns of the output projection) and keeps the
  head size: BERT's `view(*shape, -1, attention_head_size)` then finds fewer heads. Grouped-query attention
  (key/value narrower than query) is left whole.
- torch.nn.MultiheadAttention: its fused in_proj is tied to the model width (embed_dim); torch-pruning can only
  narrow every head and the residual stream with it, so it is left whole and the layers around it are pruned.

Checked on BERT, RoBERTa, DistilBERT (transformers 5.24) and nn.TransformerEncoder. Llama-style models with rotary
embeddings are out of reach: torch-pruning 1.6's group search does not finish on them, with or without heads.

The residual stream (the input of every attention module: embeddings, LayerNorms, output projections, a
transformer's hidden size) keeps its width: narrowing it changes every layer at once, and a pretrained
transformer loses the most accuracy there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Attention", "find_attention", "residual_layers", "set_head_counts"]

_PROJECTIONS = (("query", "key", "value"), ("q_proj", "k_proj", "v_proj"), ("q_lin", "k_lin", "v_lin"))
_HEAD_COUNTS = ("num_attention_heads", "num_heads", "n_heads")


@dataclass
class Attention:
    name: str
    module: Any
    heads: int
    projections: tuple[Any, Any, Any] | None  # query, key, value Linears; None for nn.MultiheadAttention
    kept: str | None = None  # why its heads are not pruned; None: whole heads are removed

    @property
    def layers(self) -> list[Any]:
        """The modules to leave untouched when the heads are kept."""
        return [self.module] if self.projections is None else list(self.projections)


def find_attention(model: Any) -> list[Attention]:
    """Every attention module of `model`, outermost first (a module inside a found one is not searched)."""
    import torch

    found: list[Attention] = []
    for name, m in model.named_modules():
        if any(name.startswith(f"{a.name}.") for a in found if a.name):
            continue
        if isinstance(m, torch.nn.MultiheadAttention):
            found.append(Attention(name, m, m.num_heads, None, "nn.MultiheadAttention: q/k/v width is the model width"))
        elif (attention := _hf_attention(name, m)) is not None:
            found.append(attention)
    return found


def _hf_attention(name: str, m: Any) -> Attention | None:
    import torch

    for names in _PROJECTIONS:
        projections = tuple(getattr(m, n, None) for n in names)
        if all(isinstance(p, torch.nn.Linear) for p in projections):
            break
    else:
        return None
    heads = _head_count(m)
    q, k, v = projections
    if heads is None:
        return Attention(name, m, 0, projections, "no head count attribute (num_attention_heads, num_heads, n_heads)")
    if not q.out_features == k.out_features == v.out_features or q.out_features % heads:
        why = f"q/k/v widths {q.out_features}/{k.out_features}/{v.out_features} are not {heads} equal heads"
        return Attention(name, m, heads, projections, why + " (grouped-query attention?)")
    return Attention(name, m, heads, projections)


def _head_count(m: Any) -> int | None:
    for attr in _HEAD_COUNTS:
        if isinstance(getattr(m, attr, None), int):
            return getattr(m, attr)
    heads = getattr(getattr(m, "config", None), "num_attention_heads", None)
    return heads if isinstance(heads, int) else None


def residual_layers(graph: Any, attentions: list[Attention]) -> list[Any]:
    """The modules whose output channels are the residual stream feeding the attention modules: pruning them
    would narrow the model's hidden size. `graph` is a torch-pruning DependencyGraph of the model."""
    import torch
    import torch_pruning as tp

    layers: dict[int, Any] = {}
    for a in attentions:
        if a.layers[0] not in graph.module2node:
            continue  # NOTE: not run by the model's forward: torch-pruning leaves it alone
        if a.projections is not None:
            q = a.projections[0]
            group = graph.get_pruning_group(q, tp.prune_linear_in_channels, list(range(q.in_features)))
        else:
            group = graph.get_pruning_group(a.module, tp.prune_multihead_attention_out_channels, [0])
        for dep, _ in group:
            module = dep.target.module
            if graph.is_out_channel_pruning_fn(dep.handler) and isinstance(module, torch.nn.Module):
                layers[id(module)] = module
        if a.projections is None:
            layers[id(a.module)] = a.module
    return list(layers.values())


def set_head_counts(attentions: list[Attention], num_heads: dict[Any, int]) -> dict[str, list[int]]:
    """After pruning: each module's head-count attributes from torch-pruning's `num_heads` (keyed by the query
    Linear); the head size stays. Returns {module: [heads before, after]}."""
    counts = {}
    for a in attentions:
        if a.kept is not None:
            continue
        q = a.projections[0]
        after = num_heads[q]
        for attr in _HEAD_COUNTS:
            if isinstance(getattr(a.module, attr, None), int):
                setattr(a.module, attr, after)
        if isinstance(getattr(a.module, "all_head_size", None), int):
            a.module.all_head_size = q.out_features
        counts[a.name] = [a.heads, after]
    return counts

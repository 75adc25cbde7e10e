"""A torch module + example inputs → MACs, parameters, and non-zero parameters (what sparsity removes).

MACs come from torch-pruning's counter, which needs a plain nn.Module; a .pt2 program's module has none
(None), its parameters are still counted."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["model_cost"]

log = logging.getLogger(__name__)


def model_cost(module: Any, examples: tuple[Any, ...]) -> dict[str, int | None]:
    import torch

    params = sum(p.numel() for p in module.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in module.parameters())
    return {"macs": _macs(module, examples), "params": int(params), "nonzero_params": nonzero}


def _macs(module: Any, examples: tuple[Any, ...]) -> int | None:
    import torch
    import torch_pruning as tp

    try:
        with torch.no_grad():
            macs, _ = tp.utils.count_ops_and_params(module, examples)
    except Exception as exc:  # the counter traces the module; a graph module refuses in several ways
        log.info("cannot count MACs of %s: %s", type(module).__name__, exc)
        return None
    return int(macs) or None  # NOTE: a graph module traces to no counted op: 0 means unknown, not free

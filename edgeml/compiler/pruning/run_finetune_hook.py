"""`--finetune-hook package.module:function` → the user's own recovery training, called on the pruned model.

The hook is called as `function(model, data, teacher)`: `model` the pruned nn.Module (train it in place or
return a new one), `data` the `--finetune` Dataset (`.inputs` dict of arrays, `.labels` or None) or None,
`teacher` the unpruned float model. Whatever it raises is caught by the caller, which reports it and keeps
the un-pruned model.
"""

from __future__ import annotations

import time
from typing import Any

from edgeml.calibration.dataset import Dataset
from edgeml.errors import EdgemlError
from edgeml.importing import import_callable

__all__ = ["FinetuneHookError", "run_finetune_hook"]


class FinetuneHookError(EdgemlError):
    """The user's fine-tune hook could not be imported, raised, or returned something that is not a model."""


def run_finetune_hook(spec: str, model: Any, data: Dataset | None, teacher: Any) -> tuple[Any, dict[str, Any]]:
    import torch

    fn = import_callable(spec, FinetuneHookError)
    started = time.perf_counter()
    try:
        result = fn(model, data, teacher)
    except Exception as exc:
        raise FinetuneHookError(f"fine-tune hook {spec} raised {type(exc).__name__}: {exc}") from exc
    if result is not None and not isinstance(result, torch.nn.Module):
        raise FinetuneHookError(f"fine-tune hook {spec} returned {type(result).__name__}, not an nn.Module or None")
    trained = (result if result is not None else model).eval()
    return trained, {"kind": "hook", "hook": spec, "seconds": round(time.perf_counter() - started, 2)}

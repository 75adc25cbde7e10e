"""Global average pooling `x.mean((2, 3))` → `x.mean((2, 3), keepdim=True).flatten(1)`, in a torch FX graph.

litert-torch keeps an op in channels-last only when its output is still 4-D, so the usual 2-D global mean
gets a TRANSPOSE back to NCHW in front of it. On Ethos-U that TRANSPOSE + MEAN is a depth reduction Vela
cannot place ("Reduction over depth is only supported if any of h,w,c == 1"): the MEAN falls back to the
CPU. With keepdim the MEAN reduces H and W of the NHWC tensor and runs on the NPU. Same values, same shape.
"""

from __future__ import annotations

from typing import Any

__all__ = ["keep_mean_channels_last"]


def keep_mean_channels_last(graph_module: Any) -> int:
    """Rewrite every 4-D spatial `aten.mean.dim` (keepdim=False) in place; returns how many were rewritten."""
    import torch

    aten = torch.ops.aten
    graph = graph_module.graph
    rewritten = 0
    for node in list(graph.nodes):
        if not _is_spatial_mean(node, aten):
            continue
        with graph.inserting_before(node):
            kept = graph.call_function(aten.mean.dim, (node.args[0], [2, 3], True))
            flat = graph.call_function(aten.flatten.using_ints, (kept, 1))
        node.replace_all_uses_with(flat)
        graph.erase_node(node)
        rewritten += 1
    if rewritten:
        graph.lint()
        graph_module.recompile()
    return rewritten


def _is_spatial_mean(node: Any, aten: Any) -> bool:
    if node.op != "call_function" or node.target != aten.mean.dim:
        return False
    value = node.args[0].meta.get("val") if hasattr(node.args[0], "meta") else None
    keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    dims = node.args[1] if len(node.args) > 1 else None
    if value is None or value.dim() != 4 or keepdim or not dims or node.kwargs.get("dtype") is not None:
        return False
    return sorted(int(d) % 4 for d in dims) == [2, 3]

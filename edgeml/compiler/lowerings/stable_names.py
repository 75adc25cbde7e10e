"""OpenVINO model → the same model with its auto-generated node names replaced by names that do not depend
on the process's history.

OpenVINO names a node it creates `<Type>_<instance id>` from a process-wide counter (`Constant_31160`), so
converting the same ONNX twice in one process gives IRs that differ only in those names. They are renamed
`<Type>.<n>`, numbered in topological order; names that come from the ONNX model are kept.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

__all__ = ["onnx_names", "stabilize_names"]

_AUTO_NAME = re.compile(r"([A-Za-z][A-Za-z0-9]*)_\d+")
_STABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*\.(\d+)")


def onnx_names(proto: Any) -> set[str]:
    """Every name the ONNX graph defines: inputs, outputs, initializers, nodes and node outputs."""
    graph = proto.graph
    names = {v.name for v in (*graph.input, *graph.output)} | {i.name for i in graph.initializer}
    for node in graph.node:
        names.add(node.name)
        names.update(node.output)
    return names


def stabilize_names(model: Any, keep: Collection[str]) -> int:
    """Rename `model`'s auto-named nodes in place (it is the caller's own copy); returns how many."""
    ops = model.get_ordered_ops()
    taken = [int(m.group(1)) for op in ops if (m := _STABLE_NAME.fullmatch(op.get_friendly_name()))]
    next_id = max(taken, default=-1) + 1
    renamed = 0
    for op in ops:
        match = _AUTO_NAME.fullmatch(op.get_friendly_name())
        if match and op.get_friendly_name() not in keep:
            op.set_friendly_name(f"{match.group(1)}.{next_id + renamed}")
            renamed += 1
    return renamed

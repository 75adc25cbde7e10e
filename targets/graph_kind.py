"""ONNX graph → its kind ('transformer', 'conv', 'dense' or 'other'): which quantization recipes fit it.

Read from the graph as it will run, control flow included: where the model has `If`/`Loop`/`Scan` nodes, ONNX
Runtime's basic optimisation is applied first (in memory; it inlines an `If` whose condition is a constant, as
the compile's own optimisation pass will), and the ops inside the bodies that remain count with the rest.
silero-vad's ONNX holds its whole network (6 Conv + LSTM) inside one `If`: read from the top-level nodes only
it was "other", and INT8 was never tried.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = [
    "CONTROL_FLOW",
    "WEIGHTED",
    "graph_kind",
    "layers_in_bodies",
    "nncf_blind_spot",
    "optimised_graph",
    "walk_nodes",
    "weighted_in_bodies",
]

CONTROL_FLOW = ("If", "Loop", "Scan")
WEIGHTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def graph_kind(model: Any) -> str:
    """'transformer' (attention: Softmax between MatMuls, no Conv), 'conv', 'dense' (MatMul/Gemm) or 'other'."""
    ops = Counter(node.op_type for node, _ in walk_nodes(optimised_graph(model).graph))
    if ops["Conv"] or ops["ConvTranspose"]:
        return "conv"
    if ops["Attention"] or ops["MultiHeadAttention"] or (ops["Softmax"] and ops["MatMul"] >= 2):
        return "transformer"
    if ops["MatMul"] or ops["Gemm"]:
        return "dense"
    return "other"


def layers_in_bodies(model: Any) -> tuple[str, ...]:
    """The control-flow nodes (of the optimised graph) whose bodies hold weighted layers (Conv, MatMul, Gemm)
    while its top level holds none: a quantizer that works on the top-level graph (ONNX Runtime's QDQ
    `quantize_static`) leaves such a model untouched. Empty where the top level has weighted layers."""
    graph = optimised_graph(model).graph
    if any(node.op_type in WEIGHTED for node in graph.node):
        return ()
    holders = {inside[0].split(".")[0] for node, inside in walk_nodes(graph) if inside and node.op_type in WEIGHTED}
    return tuple(sorted(holders))


def weighted_in_bodies(model: Any) -> tuple[str, ...]:
    """The control-flow nodes (of the optimised graph) whose bodies hold any weighted layer: NNCF's graph does not
    see inside them (nncf 3.4: "Could not find a node … in NNCFGraph"), so its INT8 cannot be built there."""
    graph = optimised_graph(model).graph
    holders = {inside[0].split(".")[0] for node, inside in walk_nodes(graph) if inside and node.op_type in WEIGHTED}
    return tuple(sorted(holders))


def nncf_blind_spot(model: Any, precision: str) -> str | None:
    """Why NNCF INT8 cannot be built for `model` (weighted layers inside control-flow bodies), as a plan note in
    auto mode; None where it can. A pinned INT8 precision is refused with the reason and the fix."""
    from edgeml.errors import TargetError

    hidden = weighted_in_bodies(model)
    if not hidden:
        return None
    why = f"weighted layers sit inside {', '.join(hidden)} (control flow), which NNCF's graph does not see"
    fix = (
        "give the input that picks the branch as a constant (--input NAME:constant=V; the optimiser then inlines "
        "it) or export the model without If/Loop"
    )
    if precision != "auto":
        raise TargetError(f"{precision} cannot be built with NNCF for this model: {why}", fix)
    return f"int8 not tried: {why}; {fix}"


def walk_nodes(graph: Any, inside: tuple[str, ...] = ()) -> list[tuple[Any, tuple[str, ...]]]:
    """Every node of `graph` and of the subgraphs its nodes hold (`If` branches, `Loop`/`Scan` bodies), each with
    the path of control-flow nodes it sits in ("If_0.then_branch", …)."""
    found = []
    for node in graph.node:
        found.append((node, inside))
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                found += walk_nodes(sub, (*inside, f"{node.name or node.op_type}.{attr.name}"))
    return found


def optimised_graph(model: Any) -> Any:
    """`model` after ONNX Runtime's basic offline optimisation where it has control flow (else as given, and as
    given where ONNX Runtime cannot load it: the check reports why)."""
    if not any(node.op_type in CONTROL_FLOW for node in model.graph.node):
        return model
    import tempfile
    from pathlib import Path

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgeml-kind-") as folder:
        out = Path(folder) / "optimised.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(out)
        options.log_severity_level = 3
        try:
            ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            return onnx.load(str(out))
        except Exception:  # NOTE: ORT refuses some graphs (custom ops, bad shapes); the kind then reads them as given
            return model

"""The float FX graph + its PT2E-converted twin → per-layer numerics of a full-INT8 LiteRT model, like a QDQ
model's (../layer_numerics.py): for each convolution or linear layer, its rounded output against the float
graph's on the same calibration samples — SQNR, cosine, max error, value ranges, the INT8 range it is
rounded into and the share of float values outside it.

Both graphs come from the one export every LiteRT conversion starts from, so their nodes share names. The
converted graph holds PT2E's reference semantics (quantize → dequantize around float ops), which is what
litert-torch lowers to INT8 TFLite kernels: the numbers describe the quantization, not LiteRT's kernels'
last-bit rounding. A layer's output is read after the quantize/dequantize that rounds it for the next layer
(after a fused ReLU, as the TFLite kernel applies it); where nothing rounds it (a layer kept in float, the
last layer's output), at the layer itself. Layers are named by module path, as int8-mixed names them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.layer_numerics import CAP_DB, SAMPLES, measure_layer, sqnr

__all__ = ["pt2e_layer_numerics"]

_LAYER_OPS = {"conv1d": "Conv", "conv2d": "Conv", "conv3d": "Conv", "conv_transpose2d": "ConvTranspose",
              "linear": "Linear", "matmul": "MatMul"}  # fmt: skip
_FUSED = {"relu": "Relu", "relu_": "Relu", "hardtanh": "Relu6", "clamp": "Clamp"}


def pt2e_layer_numerics(
    float_graph: Any, converted: Any, calibration: Dataset, feed: Any, module_paths: Any
) -> list[dict[str, Any]]:
    """Rows (LayerNumerics.to_dict) in graph order; `feed(calibration, i)` is sample i as graph kwargs and
    `module_paths(node)` a node's source-module paths."""
    float_nodes = {n.name: n for n in float_graph.graph.nodes}
    q_nodes = {n.name: n for n in converted.graph.nodes}
    layers = [n for n in float_graph.graph.nodes if _kind(n) and n.name in q_nodes]
    if not layers:
        return []
    reads = {la.name: _read_point(q_nodes[la.name]) for la in layers}  # (float read, converted read, range, fused)
    inputs = {n.name: _rounded(n) for n in converted.graph.nodes if n.op == "placeholder"}
    inputs = {k: v for k, v in inputs.items() if v is not None}
    want_float = {r[0] for r in reads.values()} | set(inputs)
    want_q = {r[1] for r in reads.values()} | set(inputs.values())
    got_float = _capture(float_graph, want_float, calibration, feed)
    got_q = _capture(converted, want_q, calibration, feed)
    sqnr_of = {name: sqnr(got_float[name], got_q[node]) for name, node in inputs.items()}
    tensor_of = {reads[la.name][0]: la.name for la in layers} | {name: name for name in inputs}
    rows = []
    for layer in layers:
        float_read, q_read, int8_range, fused = reads[layer.name]
        upstream = _upstream(float_nodes[layer.name], tensor_of)
        worst = min((sqnr_of[u] for u in upstream if u in sqnr_of), default=CAP_DB)
        paths, op = module_paths(layer), _LAYER_OPS[_kind(layer)]
        row = measure_layer(
            paths[-1] if paths else layer.name, f"{op}+{fused}" if fused else op, float_read,
            "int8" if _weights_rounded(q_nodes[layer.name]) else "float",
            got_float[float_read], got_q[q_read], int8_range, worst,
        )  # fmt: skip
        sqnr_of[layer.name] = row.sqnr_db
        rows.append(row.to_dict())
    return rows


def _kind(node: Any) -> str:
    """ "conv2d", "linear", … for a float-graph layer whose weights are a parameter, else ""."""
    if node.op != "call_function" or len(node.args) < 2:
        return ""
    name = _aten_name(node)
    return name if name in _LAYER_OPS and getattr(node.args[1], "op", None) == "get_attr" else ""


def _aten_name(node: Any) -> str:
    target = str(node.target)
    return target.split(".")[1] if target.startswith("aten.") else ""


def _weights_rounded(node: Any) -> bool:
    return len(node.args) > 1 and "dequantize" in str(getattr(node.args[1], "target", ""))


def _read_point(layer: Any) -> tuple[str, str, tuple[float, float] | None, str]:
    """Where to read the layer: (float graph node, converted graph node, INT8 range, fused op)."""
    node, fused = layer, ""
    users = list(node.users)
    if len(users) == 1 and _FUSED.get(_aten_name(users[0])):
        node, fused = users[0], _FUSED[_aten_name(users[0])]
        users = list(node.users)
    quantize = next((u for u in users if _is_quantize(u)), None)
    dequantize = next(iter(quantize.users), None) if quantize is not None else None
    if quantize is None or dequantize is None:
        return layer.name, layer.name, None, ""
    scale, zero_point = float(quantize.args[1]), int(quantize.args[2])
    return node.name, dequantize.name, ((-128 - zero_point) * scale, (127 - zero_point) * scale), fused


def _is_quantize(node: Any) -> bool:
    target = str(node.target)
    return "quantize_per_tensor" in target and "dequantize" not in target


def _rounded(placeholder: Any) -> str | None:
    """A graph input's dequantize (what the first layer reads), where the converted graph rounds it."""
    for user in placeholder.users:
        if _is_quantize(user) and user.users:
            return next(iter(user.users)).name
    return None


def _upstream(node: Any, tensor_of: dict[str, str]) -> set[str]:
    """The layers (or rounded inputs) whose read points reach `node` through other ops of the float graph."""
    found, seen = set(), set()
    todo = [a for a in node.args if hasattr(a, "op")]
    while todo:
        arg = todo.pop()
        if arg.name in seen:
            continue
        seen.add(arg.name)
        if arg.name in tensor_of:
            found.add(tensor_of[arg.name])
        elif arg.op == "call_function":
            todo.extend(a for a in arg.args if hasattr(a, "op"))
    return found


def _capture(graph: Any, names: set[str], calibration: Dataset, feed: Any) -> dict[str, np.ndarray]:
    """Each named node's value over the first SAMPLES samples, stacked along the batch."""
    import torch

    class Capture(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            result = super().run_node(n)
            if n.name in names:
                values.setdefault(n.name, []).append(result.detach().float().numpy().copy())
            return result

    values: dict[str, list[np.ndarray]] = {}
    placeholders = [n.name for n in graph.graph.nodes if n.op == "placeholder"]
    with torch.no_grad():
        for i in range(min(SAMPLES, len(calibration))):
            kwargs = feed(calibration, i)
            Capture(graph).run(*(kwargs[name] for name in placeholders))
    return {name: np.concatenate(v) for name, v in values.items()}

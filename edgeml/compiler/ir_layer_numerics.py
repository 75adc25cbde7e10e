"""An NNCF-quantized OpenVINO IR + the float ONNX model it came from → per-layer numerics, like a QDQ model's
(layer_numerics.py): for each INT8 layer (ir_quantized_layers.py), its output in the IR against the float
model's tensor on the same calibration samples — SQNR, cosine, max error, value ranges, and the INT8 range
of the FakeQuantize that rounds it with the share of float values outside it.

The layer's output is read where OpenVINO computes it (the op's output port, added as a model output), before
the FakeQuantize that rounds it for the next layer: it carries this layer's rounded inputs and weights. The
IR runs on OpenVINO's CPU plugin in f32 (no bf16 down-conversion), once over the samples; the float side is
the probe's ONNX Runtime run, shared with the QDQ tables. Both stream over the samples in the chunks the
probe's memory budget allows, each layer's figures summed as they come (layer_stats.py). `sqnr_drop_db` is
the SQNR a layer loses against its worst upstream layer, found by walking the float ONNX graph back from the
layer's node.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeml.compiler.ir_quantized_layers import ir_quantized_layers
from edgeml.compiler.layer_numerics import CAP_DB, LayerNumerics, LayerProbe, join_samples, layer_row
from edgeml.compiler.layer_stats import LayerStats
from edgeml.compiler.lowerings.onnx_origins import OnnxOrigins
from edgeml.compiler.quantized_layers import QuantizedLayer

__all__ = ["ir_layer_numerics"]


def ir_layer_numerics(
    xml: bytes, weights: bytes, probe: LayerProbe, kept_float: tuple[str, ...] = ()
) -> list[LayerNumerics]:
    """Every INT8 layer of the IR and every layer named in `kept_float`, in graph order."""
    import openvino as ov

    proto = probe.float_proto
    origins = OnnxOrigins(proto)
    layers = ir_quantized_layers(xml, weights, proto)
    named = {la.name for la in layers}
    layers += [_float_layer(name, origins) for name in kept_float if name not in named and name in origins.outputs]
    layers = [la for la in layers if probe.has(la.output)]
    if not layers:
        return []
    model = ov.Core().read_model(xml, weights)
    ports = _output_ports(model, origins, {la.name: la.output for la in layers})
    layers = [la for la in layers if la.name in ports]
    inputs = _rounded_inputs(model, {i.name for i in proto.graph.input if probe.has(i.name)})
    ranges = {la.name: _fake_quantize_range(ports[la.name]) for la in layers}
    stats = {la.name: LayerStats(ranges[la.name]) for la in layers} | {name: LayerStats(None) for name in inputs}
    tensors = [la.output for la in layers] + list(inputs)
    same_size = dict.fromkeys(stats, True)
    runner = _Runner(model, [ports[la.name] for la in layers] + list(inputs.values()), probe.one_sample_feeds)
    for feeds, refs in probe.chunks(set(tensors), sum(probe.tensor_bytes[t] for t in tensors)):
        for feed, ref in zip(feeds, refs, strict=True):
            for key, tensor, out in zip(list(stats), tensors, runner.run(feed), strict=True):
                if out.size != ref[tensor].size:
                    same_size[key] = False  # NOTE: laid out differently from the ONNX tensor (a layout change)
                elif same_size[key]:
                    stats[key].add(ref[tensor], out)
    # NOTE: a rounded graph input is the first layer's upstream, as in the QDQ tables
    by_name = {name: stats[name].sqnr() for name in inputs if stats[name].count}
    upstream = _upstream(proto, {la.output: la.name for la in layers} | {name: name for name in inputs})
    rows = []
    for la in layers:
        if not same_size[la.name] or not stats[la.name].count:
            continue
        worst = min((by_name[u] for u in upstream[la.name] if u in by_name), default=CAP_DB)
        precision = "int8" if la.int8 else "float"
        row = layer_row(la.name, la.label, la.output, precision, stats[la.name], worst)
        by_name[la.name] = row.sqnr_db
        rows.append(row)
    order = {n.name: i for i, n in enumerate(proto.graph.node)}
    return sorted(rows, key=lambda r: order.get(r.layer, len(order)))


def _float_layer(name: str, origins: OnnxOrigins) -> QuantizedLayer:
    return QuantizedLayer(name, origins.op_type(name, "?"), origins.outputs[name], False, False, False, None)


def _output_ports(model: Any, origins: OnnxOrigins, outputs: dict[str, str]) -> dict[str, Any]:
    """Layer → the IR output port computing its ONNX output tensor: the port carrying that tensor name,
    else the last op converted from the layer's node."""
    by_tensor = {name: layer for layer, name in outputs.items()}
    found: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() in ("Result", "Constant", "FakeQuantize", "Parameter"):
            continue
        for port in op.outputs():
            for tensor in port.get_names():
                if tensor in by_tensor:
                    found.setdefault(by_tensor[tensor], port)
        origin = origins.of(op.get_friendly_name())
        if origin in outputs and op.get_output_size() == 1:
            last[origin] = op.output(0)
    return {layer: found.get(layer, last.get(layer)) for layer in outputs if layer in found or layer in last}


def _rounded_inputs(model: Any, names: set[str]) -> dict[str, Any]:
    """Graph input name → the output of the FakeQuantize that rounds it, where the IR rounds it."""
    found = {}
    for parameter in model.get_parameters():
        name = next((n for n in parameter.output(0).get_names() if n in names), None)
        fq = next(
            (
                t.get_node()
                for t in parameter.output(0).get_target_inputs()
                if t.get_node().get_type_name() == "FakeQuantize"
            ),
            None,
        )
        if name and fq is not None:
            found[name] = fq.output(0)
    return found


class _Runner:
    """The IR compiled once with `ports` added as outputs; `run` gives their values for one feed, sample by
    sample where the IR's batch is fixed (npu-openvino reshapes to static shapes), joined back per feed."""

    def __init__(self, model: Any, ports: list[Any], one_sample: bool = False) -> None:
        import openvino as ov

        added = model.add_outputs(ports)
        self.index = [next(i for i, o in enumerate(model.outputs) if o == a) for a in added]
        compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": 1})
        self.request = compiled.create_infer_request()
        self.split = all(p.get_partial_shape().is_static for p in compiled.inputs) and not one_sample
        self.names = [p.get_any_name() for p in compiled.inputs]

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        results: list[list[np.ndarray]] = [[] for _ in self.index]
        for sample in _split(feed) if self.split else [feed]:
            out = self.request.infer({n: sample[n] for n in self.names if n in sample}).to_tuple()
            for i, at in enumerate(self.index):
                results[i].append(np.array(out[at]))
        return [join_samples(r) for r in results]


def _split(feed: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    count = len(next(iter(feed.values())))
    return [{k: v[i : i + 1] for k, v in feed.items()} for i in range(count)]


def _fake_quantize_range(port: Any) -> tuple[float, float] | None:
    """The range the FakeQuantize after this output rounds into (per-tensor or its per-channel extremes)."""
    for target in port.get_target_inputs():
        fq = target.get_node()
        if fq.get_type_name() != "FakeQuantize":
            continue
        low, high = (fq.input(i).get_source_output().get_node() for i in (1, 2))
        if low.get_type_name() == "Constant" and high.get_type_name() == "Constant":
            return float(np.min(low.get_data())), float(np.max(high.get_data()))
    return None


def _upstream(proto: Any, layer_of_tensor: dict[str, str]) -> dict[str, set[str]]:
    """Layer → the layers whose outputs reach its node's inputs through non-layer nodes of the float graph."""
    producers = {out: n for n in proto.graph.node for out in n.output if out}
    found: dict[str, set[str]] = {}
    layers = set(layer_of_tensor.values())
    for node in proto.graph.node:
        if node.name not in layers:
            continue
        seen, todo, hits = set(), list(node.input), set()
        while todo:
            tensor = todo.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            if tensor in layer_of_tensor:
                hits.add(layer_of_tensor[tensor])
            elif tensor in producers:
                todo.extend(producers[tensor].input)
        found[node.name] = hits
    return found

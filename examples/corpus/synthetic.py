"""Small synthetic models, one per failure class of issue 12, each a few KB, seeded so every build is the same.

Each is a PyTorch module (``*_module()``; the factories ``examples.corpus.synthetic:<name>`` return it with
example inputs, for targets that start from PyTorch) and an ONNX file written by ``write_onnx(name, path)``
that carries the failure class:

  neg_dims      CNN classifier; ONNX input ``[-1, 3, ?, ?]`` (batch as dim_value -1, H/W empty, as paddle2onnx)
  state_axis1   recurrent step: ``x [N, 64]``, ``state [2, N, 32]`` (batch on axis 1) → ``prob [N, 1]``, ``stateN``
  scalar_input  ``x [N, 64]`` and a rank-0 ``gain`` → ``y [N, 8]``
  if_body       the whole CNN inside an ``If`` on ``Equal(sr, 16000)`` (as silero-vad's export)
  det_head      YOLO-like head: one output ``[N, 4 + 3, 64]``: 4 box coordinates in 0..320 beside sigmoid scores
  one_sigmoid   CNN → ``[N, 1]`` sigmoid probability (a one-number output)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["NAMES", "det_head", "module", "one_sigmoid", "write_onnx"]

NAMES = ("neg_dims", "state_axis1", "scalar_input", "if_body", "det_head", "one_sigmoid")
IMAGE = (3, 32, 32)
OPSET = 17


class SmallCnn(nn.Module):
    """conv-bn-relu ×3 → global pool → linear: the body the image models share."""

    def __init__(self, out: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in ((3, 16), (16, 32), (32, 32)):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(32, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cnn = SmallCnn(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.cnn(x), dim=1)


class OneSigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cnn = SmallCnn(1)
        with torch.no_grad():
            self.cnn.head.weight.mul_(20.0)  # logits spread over both sides of 0.5, not a flat 0.54

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.cnn(x))


class StateAxis1(nn.Module):
    """A 2-layer GRU step whose state is [layers, batch, hidden] (the PyTorch RNN layout): batch on axis 1."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(64, 32)
        self.gru = nn.GRU(32, 32, num_layers=2)
        self.out = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, state_n = self.gru(torch.relu(self.proj(x)).unsqueeze(0), state)
        return torch.sigmoid(self.out(h[0])), state_n


class ScalarInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 64), nn.Linear(64, 8)

    def forward(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x * gain)))


class DetHead(nn.Module):
    """Backbone → 8×8 grid → per cell 4 box coordinates (sigmoid × 320) and 3 class scores (sigmoid), one output."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 3, 2, 1)
        )
        self.box, self.cls = nn.Conv2d(32, 4, 1), nn.Conv2d(32, 3, 1)
        with torch.no_grad():
            self.cls.bias.fill_(-3.0)  # most scores below 0.1, as a detector's background cells

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.body(x))
        boxes = torch.sigmoid(self.box(f)) * 320.0
        scores = torch.sigmoid(self.cls(f))
        return torch.cat([boxes, scores], dim=1).flatten(2)


_MODULES = {
    "neg_dims": Classifier,
    "if_body": Classifier,
    "one_sigmoid": OneSigmoid,
    "state_axis1": StateAxis1,
    "scalar_input": ScalarInput,
    "det_head": DetHead,
}
# name → (input names, output names, example shapes [batch 1], dynamic axes)
_IO: dict[str, tuple[list[str], list[str], list[tuple[int, ...]], dict]] = {
    "neg_dims": (["x"], ["probs"], [(1, *IMAGE)], {"x": {0: "N"}, "probs": {0: "N"}}),
    "if_body": (["x"], ["probs"], [(1, *IMAGE)], {"x": {0: "N"}, "probs": {0: "N"}}),
    "one_sigmoid": (["x"], ["prob"], [(1, *IMAGE)], {"x": {0: "N"}, "prob": {0: "N"}}),
    "det_head": (["x"], ["pred"], [(1, 3, 64, 64)], {"x": {0: "N"}, "pred": {0: "N"}}),
    "state_axis1": (
        ["x", "state"], ["prob", "stateN"], [(1, 64), (2, 1, 32)],
        {"x": {0: "N"}, "state": {1: "N"}, "prob": {0: "N"}, "stateN": {1: "N"}},
    ),
    "scalar_input": (["x", "gain"], ["y"], [(1, 64), ()], {"x": {0: "N"}, "y": {0: "N"}}),
}  # fmt: skip


def module(name: str) -> nn.Module:
    """The seeded module for `name` in eval mode (BatchNorm statistics set so activations stay lively)."""
    torch.manual_seed(NAMES.index(name) + 1)
    m = _MODULES[name]()
    for bn in (x for x in m.modules() if isinstance(x, nn.BatchNorm2d)):
        bn.running_var.uniform_(0.05, 0.3)
        bn.running_mean.uniform_(-0.2, 0.2)
    return m.eval()


def examples(name: str) -> tuple[torch.Tensor, ...]:
    shapes = _IO[name][2]
    return tuple(torch.full(s, 1.0) if s == () else torch.zeros(s) for s in shapes)


def det_head() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """edgeml factory: the detection head and one example input."""
    return module("det_head"), examples("det_head")


def one_sigmoid() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """edgeml factory: the one-number sigmoid CNN and one example input."""
    return module("one_sigmoid"), examples("one_sigmoid")


def write_onnx(name: str, path: Path) -> Path:
    """Export `name` to ONNX at `path`, then give it its failure class (negative dims, an If around the body)."""
    import onnx

    inputs, outputs, _, dynamic = _IO[name]
    torch.onnx.export(
        module(name), examples(name), str(path), dynamo=False, opset_version=OPSET,
        input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
    )  # fmt: skip
    model = onnx.load(str(path))
    if name == "neg_dims":
        _negative_dims(model)
    if name == "if_body":
        model = _inside_if(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _negative_dims(model) -> None:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].Clear()
    dims[0].dim_value = -1
    for d in dims[2:]:
        d.Clear()  # neither value nor name: '?'


def _inside_if(model):
    """x → If(Equal(sr, 16000), then: the body, else: the body again under other names) → probs; sr is a scalar."""
    from onnx import TensorProto, helper

    g = model.graph
    out = g.output[0]

    def branch(prefix: str):
        rename = {n: f"{prefix}{n}" for node in g.node for n in node.output}
        nodes = []
        for node in g.node:
            copy = helper.make_node(
                node.op_type,
                [rename.get(i, i) for i in node.input],
                [rename[o] for o in node.output],
                name=f"{prefix}{node.name}",
                domain=node.domain,
            )
            copy.attribute.extend(node.attribute)
            nodes.append(copy)
        result = helper.make_tensor_value_info(rename[out.name], TensorProto.FLOAT, None)
        return helper.make_graph(nodes, f"{prefix}branch", [], [result])

    sr = helper.make_tensor_value_info("sr", TensorProto.INT64, [])
    const = helper.make_tensor("sr_16k", TensorProto.INT64, [], [16000])
    eq = helper.make_node("Equal", ["sr", "sr_16k"], ["is_16k"], name="Equal_sr")
    cond = helper.make_node(
        "If", ["is_16k"], [out.name], name="If_0", then_branch=branch("then_"), else_branch=branch("else_")
    )
    graph = helper.make_graph([eq, cond], "if_body", [g.input[0], sr], [out], initializer=[*g.initializer, const])
    new = helper.make_model(graph, opset_imports=model.opset_import, producer_name="edgeml-corpus")
    new.ir_version = model.ir_version
    return new


def sample_outputs(name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float outputs of the torch module (used to check the ONNX files)."""
    with torch.no_grad():
        out = module(name)(*(torch.from_numpy(v) for v in feeds.values()))
    outs = out if isinstance(out, tuple) else (out,)
    return {n: o.numpy() for n, o in zip(_IO[name][1], outs, strict=True)}

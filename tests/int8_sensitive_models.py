"""Seeded ONNX models whose INT8 sensitivity is set by construction, the same on every CPU: one layer that INT8
must damage, every other layer benign, and no integer kernel that can overflow on any of them.

The accuracy-aware tests need a layer that ranks first whatever the host. A trained model's ranking is the
host's: ONNX Runtime's and oneDNN's U8S8 kernels on a CPU without VNNI (AVX2) add u8×s8 products in pairs
into int16 with saturation (`vpmaddubsw`), so the same INT8 model loses tens of dB on one CPU and nothing on
another (digits' first conv gains +20.5 dB in float on an AVX2 EPYC; on a VNNI Xeon its Gemm ranks first).
These models leave no room for that:

- Every quantized layer reads one input channel (or feature) that is always exactly 0, and each output
  channel's weight on it is `guard` times its largest other weight. Per-channel symmetric INT8 maps that guard
  to ±127 and every other weight to at most ±64 (`guard` 2: the CNN) or ±42 (3: the transformer), while the
  guard's input is the zero point. A pair of products then stays below 32,767: 255·64·2 = 32,640 for the
  CNN's u8 activations, whose zero point is 0 (ReLU outputs, inputs in [0, 1]; gpu-ort's signed ones, even
  shifted by 128 to u8: 128·127 + 255·64 = 32,576), and zero point·127 + 255·42 for the transformer's run-time
  ranges up to a zero point of 172 (146 at most in its batches of 64). No pair saturates, so an AVX2, a VNNI,
  an AMX or an Arm dot-product kernel computes the same integers as the float-simulated QDQ graph.
- The sensitive layer's error is the rounding the quantizer computes (numpy, identical everywhere): the CNN's
  `head` (Gemm) has a weight `head_outlier` (24) times its other weights on the dead feature, so its
  per-channel scale leaves the meaningful weights 5 levels; the transformer's `ffn_down` reads a hidden unit
  `outlier` (200) times larger than the others (with weights as much smaller), so the one run-time scale of
  its input rounds every other unit to a few levels.

Measured (ONNX Runtime 1.32, OpenVINO 2026.4 / NNCF 3.4) on an AVX2-only EPYC with the host's kernels, and
with every QDQ / MatMulInteger / FakeQuantize evaluated exactly in float (the VNNI result): the same to
0.01 dB and to the flipped prediction. Output SQNR all INT8 → the sensitive layer alone in float (its gain;
the next layer's):

    sensitive_cnn          cpu-ort (U8S8 QDQ)        12.0 → 26.7 dB (+14.7; +0.25)
                           cpu-openvino (NNCF)        9.3 → 19.8 dB (+10.5; +0.5)
                           gpu-ort (S8S8 QDQ)        11.7 → 22.8 dB (+11.1; +0.3)
    sensitive_transformer  cpu-ort (dynamic INT8)    15.9 → 33.6 dB (+17.7; +0.1)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ModelData", "det_head", "sensitive_cnn", "sensitive_transformer"]


@dataclass(frozen=True)
class ModelData:
    model: Path
    calib: Path  # calib.npz beside the model (compile's default)
    unlabelled: Path  # evaluation inputs without labels: the budget is the cosine floor
    labelled: Path  # the same inputs labelled with the float model's predictions (float scores 100 %)


def sensitive_cnn(folder: Path, head_outlier: float = 24.0, guards: dict[str, float] | None = None) -> ModelData:
    """conv1–conv3 (3×3, ReLU) → pool (ReduceMean) → head (Gemm) on 8×8 images of 10 noisy templates, input
    channel 1 always 0; 256 calibration and 400 evaluation images. `guards` sets a layer's guard ratio
    (default 2; the head's: `head_outlier`): a larger one leaves its other weights fewer levels."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    ratios = {"conv1": 2.0, "conv2": 2.0, "conv3": 2.0, "head": head_outlier} | (guards or {})
    templates = (rng.random((10, 8, 8)) < 0.35).astype(np.float32)
    classes, other = rng.integers(0, 10, 656), rng.integers(0, 10, 656)
    share = rng.uniform(0.55, 1.0, (656, 1, 1))  # of the class's template; the rest: another's
    pixels = share * templates[classes] + (1 - share) * templates[other] + 0.1 * rng.standard_normal((656, 8, 8))
    images = np.clip(pixels, 0, 1).astype(np.float32)[:, None]
    x = np.concatenate([images, np.zeros_like(images)], axis=1)  # channel 1: the guards' input
    graph = _Graph(helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2, 8, 8]), {"input": x})
    source, channels = "input", 2
    for i, (width, sparsity) in enumerate([(8, 0.5), (16, 0.7), (32, 0.95)], 1):
        source = _conv_relu(graph, f"conv{i}", source, channels, width, sparsity, ratios[f"conv{i}"], rng)
        channels = width + 1
    graph.add("ReduceMean", [source, graph.const("axes", np.array([2, 3], np.int64))], "pooled", "pool", keepdims=0)
    weight, bias = _fit_head(graph.run("pooled")[:, :-1], classes, ratios["head"])
    graph.add("Gemm", ["pooled", graph.const("head.weight", weight), graph.const("head.bias", bias)], "logits",
              "head", transB=1)  # fmt: skip
    return _save(folder, graph.model("logits", ["batch", 10]), input=x)


def det_head(folder: Path, guard: float = 2.0, objectness: bool = False) -> ModelData:
    """A YOLO-like detection head whose INT8 post-processing must destroy its scores: conv1, conv2 (3×3, ReLU,
    guarded as in `sensitive_cnn`) → two guarded 1×1 convs → boxes = Sigmoid × 320 and scores = Sigmoid (mostly
    below 0.1) → Concat → `pred` [N, 7, 64]: 4 box coordinates beside 3 scores. One INT8 scale on the Concat
    (320/255 per level) rounds every score to 0, on any CPU: the quantizer's numpy rounding, not a kernel's.
    In float from the Sigmoids on (the float head), every channel stays near 1.0 (cpu-ort: worst 0.998).

    With `objectness`, the joined tensor is multiplied by a per-cell Sigmoid objectness (YOLOv5-style). NNCF
    gives each Concat input a range of its own, so on OpenVINO the scores survive the Concat, but the range the
    calibration set gives them (up to 0.28) clips the rare high scores of the evaluation set (up to 0.78):
    measured, a score channel's cosine 0.988 all-INT8 and 0.997 with the head in float."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(1)
    templates = rng.random((6, 8, 8)).astype(np.float32)
    mix = rng.dirichlet(np.ones(6) * 0.5, 656).astype(np.float32)
    pixels = np.einsum("nk,khw->nhw", mix, templates) + 0.05 * rng.standard_normal((656, 8, 8))
    images = np.clip(pixels, 0, 1).astype(np.float32)[:, None]
    x = np.concatenate([images, np.zeros_like(images)], axis=1)  # channel 1: the guards' input
    graph = _Graph(helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 2, 8, 8]), {"input": x})
    source = _conv_relu(graph, "conv1", "input", 2, 8, 0.5, guard, rng)
    source = _conv_relu(graph, "conv2", source, 9, 16, 0.6, guard, rng)
    features = graph.run(source)
    heads = (("box", 4, 1.5, 0.0), ("cls", 3, 1.0, -3.5)) + ((("obj", 1, 1.0, 3.0),) if objectness else ())
    for name, width, spread, shift in heads:
        w, centre = _guarded_1x1(features, width, spread, guard, rng)
        graph.add("Conv", [source, graph.const(f"{name}.weight", w), graph.const(f"{name}.bias", shift - centre)],
                  f"{name}_logits", name)  # fmt: skip
        graph.add("Sigmoid", [f"{name}_logits"], f"{name}_sigmoid", f"{name}_sigmoid")
    graph.add("Mul", ["box_sigmoid", graph.const("image_size", np.array(320.0, np.float32))], "boxes", "box_scale")
    graph.add("Concat", ["boxes", "cls_sigmoid"], "joined", "join", axis=1)
    if objectness:
        graph.add("Mul", ["joined", "obj_sigmoid"], "kept", "objectness")
    shape = graph.const("pred_shape", np.array([0, 7, -1], np.int64))
    graph.add("Reshape", ["kept" if objectness else "joined", shape], "pred", "flatten")
    return _save(folder, graph.model("pred", ["batch", 7, 64]), input=x)


def _guarded_1x1(features: np.ndarray, width: int, spread: float, guard: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """1×1 conv weights over `features` (its last channel always 0) whose outputs have std `spread`, each output
    channel's weight on the dead channel `guard` times its largest other one; and the outputs' mean."""
    live = features[:, :-1]
    w = rng.standard_normal((width, live.shape[1])).astype(np.float32)
    out = np.einsum("oc,nchw->onhw", w, live).reshape(width, -1)
    w *= spread / out.std(1)[:, None]
    centre = (out.mean(1) * spread / out.std(1)).astype(np.float32)
    w = np.concatenate([w, guard * np.abs(w).max(1, keepdims=True)], axis=1)
    return w[:, :, None, None].astype(np.float32), centre


def sensitive_transformer(folder: Path, outlier: float = 200.0, guard: float = 3.0) -> ModelData:
    """A one-block transformer classifier (token ids in: embedding, attention, FFN, mean pool, classifier) whose
    feature 0 and FFN hidden unit 1 are always 0; 256 calibration and 128 evaluation sequences of 8 tokens."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)

    def guarded(m: np.ndarray, dead_in: int, dead_out: int | None = None) -> np.ndarray:
        alive = np.arange(len(m)) != dead_in
        m[dead_in] = guard * np.abs(m[alive]).max(0)
        if dead_out is not None:  # an output that stays 0: only its guard, on the input that is 0
            m[:, dead_out] = 0
            m[dead_in, dead_out] = 1.0
        return m

    table = w(32, 16) * np.float32(np.sqrt(32))
    table[:, 0] = 0
    up, down = w(16, 64), w(64, 16)
    up[:, 0] *= outlier  # hidden unit 0 sets ffn_down's run-time input scale …
    down[0] /= outlier  # … and adds little to its output
    graph = _Graph(helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 8]))
    g, c = graph.add, graph.const
    g("Gather", [c("table", table), "ids"], "x", "embed")
    for name, out, dead_out in (("q_proj", "q", None), ("k_proj", "k", None), ("v_proj", "v", 0)):
        g("MatMul", ["x", c(f"w_{out}", guarded(w(16, 16), 0, dead_out))], out, name)
    g("Transpose", ["k"], "kt", "k_t", perm=[0, 2, 1])
    g("MatMul", ["q", "kt"], "s0", "scores")
    g("Mul", ["s0", c("scale", np.array(16**-0.5, np.float32))], "s", "scaled")
    g("Softmax", ["s"], "p", "softmax", axis=-1)
    g("MatMul", ["p", "v"], "a", "attend")
    g("MatMul", ["a", c("w_o", guarded(w(16, 16), 0, 0))], "o", "o_proj")
    g("Add", ["x", "o"], "h", "residual1")
    g("MatMul", ["h", c("w_up", guarded(up, 0, 1))], "f0", "ffn_up")
    g("Relu", ["f0"], "f", "ffn_act")
    g("MatMul", ["f", c("w_down", guarded(down, 1, 0))], "y", "ffn_down")
    g("Add", ["h", "y"], "z", "residual2")
    g("ReduceMean", ["z", c("axes", np.array([1], np.int64))], "pooled", "pool", keepdims=0)
    g("MatMul", ["pooled", c("w_c", guarded(w(16, 10), 0))], "logits", "classifier")
    return _save(folder, graph.model("logits", ["batch", 10]), ids=rng.integers(0, 32, (384, 8)))


class _Graph:
    """Nodes and initializers added one at a time, runnable up to any tensor on the data it was given."""

    def __init__(self, graph_input, data: dict[str, np.ndarray] | None = None) -> None:
        self.input, self.data, self.nodes, self.inits = graph_input, data or {}, [], {}

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits[name] = value
        return name

    def add(self, op: str, inputs: list[str], output: str, name: str, **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def model(self, output: str, shape):
        from onnx import TensorProto, helper, numpy_helper

        out = helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)
        inits = [numpy_helper.from_array(v, k) for k, v in self.inits.items()]
        graph = helper.make_graph(self.nodes, "int8_sensitive", [self.input], [out], inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])

    def run(self, tensor: str) -> np.ndarray:
        import onnxruntime as ort

        session = ort.InferenceSession(self.model(tensor, None).SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, self.data)[0]


def _conv_relu(graph: _Graph, name: str, source: str, channels: int, width: int, sparsity: float, guard: float,
               rng) -> str:  # fmt: skip
    """A 3×3 conv with `width` live output channels and one that stays 0 (the next layer's guard input), each
    live one biased so that `sparsity` of its outputs are 0 after the ReLU and scaled to a maximum of 1 (one
    per-tensor INT8 scale fits every channel), with its guard on the input channel that is 0."""
    w = (rng.standard_normal((width + 1, channels, 3, 3)) * np.sqrt(2 / (channels * 9))).astype(np.float32)
    w[:, -1], w[-1] = 0, 0
    graph.add("Conv", [source, graph.const(f"{name}.weight", w), graph.const(f"{name}.bias", np.zeros(width + 1,
              np.float32))], f"{name}_out", name, kernel_shape=[3, 3], pads=[1, 1, 1, 1])  # fmt: skip
    pre = np.moveaxis(graph.run(f"{name}_out"), 1, 0).reshape(width + 1, -1)
    bias = -np.quantile(pre, sparsity, axis=1)
    top = np.maximum(pre + bias[:, None], 0).max(1)
    bias[-1], top[-1] = 0, 1
    w /= top[:, None, None, None]
    w[:-1, -1, 1, 1] = guard * np.abs(w[:-1]).reshape(width, -1).max(1)
    w[-1, -1, 1, 1] = 1.0
    graph.inits[f"{name}.weight"], graph.inits[f"{name}.bias"] = w, (bias / top).astype(np.float32)
    return graph.add("Relu", [f"{name}_out"], f"relu{name[-1]}", f"relu{name[-1]}")


def _fit_head(features: np.ndarray, classes: np.ndarray, outlier: float) -> tuple[np.ndarray, np.ndarray]:
    """A ridge classifier on the standardized features, as Gemm weights with one more column (the dead feature)
    holding `outlier` times each row's largest weight."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    z = (features - mean) / std
    fitted = np.linalg.solve(z.T @ z + 0.1 * len(z) * np.eye(z.shape[1]), z.T @ (2 * np.eye(10)[classes] - 1))
    weight = np.zeros((10, features.shape[1] + 1), np.float32)
    weight[:, :-1] = (fitted / std[:, None]).T
    weight[:, -1] = outlier * np.abs(weight[:, :-1]).max(1)
    return weight, (-(mean / std) @ fitted).astype(np.float32)


def _save(folder: Path, model, **inputs: np.ndarray) -> ModelData:
    """The model, calib.npz (the first 256 samples), eval.npz (the rest) and eval_float_labels.npz in `folder`."""
    import onnx
    import onnxruntime as ort

    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    calib = {k: v[:256] for k, v in inputs.items()}
    evaluation = {k: v[256:] for k, v in inputs.items()}
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    labels = session.run(None, evaluation)[0].argmax(1)
    np.savez(folder / "calib.npz", **calib)
    np.savez(folder / "eval.npz", **evaluation)
    np.savez(folder / "eval_float_labels.npz", **evaluation, labels=labels)
    return ModelData(folder / "model.onnx", folder / "calib.npz", folder / "eval.npz", folder / "eval_float_labels.npz")

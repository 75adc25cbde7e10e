"""Ethos-U states and enforces how much runs on the NPU: a PReLU CNN (PReLU was left in float by litert-torch's
PT2E quantizer) compiles with every operator on the NPU, as Vela's own report says; a model with a CPU-only
operator ships with its NPU share of operators and MACs, its fallback operators and a time estimate that
includes the CPU part in the verdict and the manifest; `min_npu_share` refuses it, naming the operators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgeml
from edgeml.compiler.lowerings.tflite_operators import tflite_operators
from edgeml.errors import TargetError
from edgeml.targets import load_target
from edgeml.targets.recipe import make_recipe

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def _compile(source: Path, out: Path, key: Path, cache: Path, **options):
    # untrained models: their near-uniform softmax flips top-1 under any INT8 rounding, so decision agreement is
    # not what these tests are about (operator placement is); the labelled accuracy budget still applies
    return edgeml.compile(str(source), "ethos-u55-128", key=key, out=out, cache_dir=cache, options=options,
                          calib=DIGITS / "calib.npz", eval_data=DIGITS / "eval.npz", min_agreement=0.0)  # fmt: skip


def _save(module, folder: Path) -> Path:
    import torch

    torch.manual_seed(0)
    batch = {0: torch.export.Dim("batch")}
    program = torch.export.export(module.eval(), (torch.rand(2, 1, 8, 8),), dynamic_shapes=(batch,))
    torch.export.save(program, folder / "model.pt2")
    return folder / "model.pt2"


def _prelu_cnn():
    """MTCNN's shape in small: conv → PReLU → pool → conv → PReLU → linear → PReLU → linear → softmax."""
    from torch import nn

    class PreluCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(1, 8, 3), nn.PReLU(8)
            self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(8, 16, 2), nn.PReLU(16)
            self.fc1, self.prelu3 = nn.Linear(16 * 2 * 2, 32), nn.PReLU(32)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            x = self.prelu2(self.conv2(self.pool(self.prelu1(self.conv1(x)))))
            return self.fc2(self.prelu3(self.fc1(x.flatten(1)))).softmax(dim=1)

    return PreluCNN()


def _sine_cnn():
    """A CPU-only operator (SIN: not in Vela's supported operators) between int8 layers."""
    import torch
    from torch import nn

    class SineCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            return self.fc(torch.sin(self.conv(x)).mean((2, 3)))

    return SineCNN()


@pytest.fixture(scope="module")
def prelu(tmp_path_factory, keypair):
    folder = tmp_path_factory.mktemp("prelu")
    return _compile(_save(_prelu_cnn(), folder), folder / "out", keypair[0], folder / "cache")


@pytest.fixture(scope="module")
def sine_pt2(tmp_path_factory) -> Path:
    return _save(_sine_cnn(), tmp_path_factory.mktemp("sine"))


@pytest.fixture(scope="module")
def sine(sine_pt2, tmp_path_factory, keypair):
    folder = tmp_path_factory.mktemp("sine-out")
    return _compile(sine_pt2, folder / "out", keypair[0], folder / "cache")


@pytest.mark.slow
def test_prelu_model_runs_every_operator_on_the_npu_by_velas_report(prelu, keypair):
    report = json.loads((prelu.out / "vela_report.json").read_text())
    assert report["operators"]["cpu"] == 0 and report["fallback"] == []
    assert report["npu_share"] == {"operators": 1.0, "macs": 1.0}
    assert {op.type for op in tflite_operators((prelu.out / "model_vela.tflite").read_bytes())} == {"ethos-u"}
    # every PReLU became int8 MINIMUM, MUL and ADD (one scale for MINIMUM, as Vela requires)
    reference = tflite_operators((prelu.out / "reference_int8.tflite").read_bytes())
    assert {"MINIMUM", "MUL", "ADD", "SOFTMAX"} <= {op.type for op in reference}
    assert all(set(op.output_dtypes) == {"INT8"} for op in reference)
    assert report["estimated_time_ms"]["cpu"] == 0 and report["cpu_estimate"]["method"] == "no operator on the CPU"
    m = edgeml.verify(prelu.out, keypair[1]).manifest
    assert m["metrics"]["device"]["npu_share"] == {"operators": 1.0, "macs": 1.0}
    assert m["metrics"]["device"]["fallback"] == []
    assert "(100%) and 100.0% of MACs on the NPU; CPU fallback: none" in m["decision"]["reason"]
    assert "(no CPU part)" in m["decision"]["reason"]


@pytest.mark.slow
def test_fallback_is_stated_with_shares_and_a_cpu_time_estimate(sine, keypair):
    report = json.loads((sine.out / "vela_report.json").read_text())
    cpu_ops = {f["op"] for f in report["fallback"]}
    assert "SIN" in cpu_ops and report["operators"]["cpu"] == len(report["fallback"]) > 0
    share = report["npu_share"]
    assert share["operators"] == pytest.approx(
        report["operators"]["npu"] / sum(report["operators"][k] for k in ("npu", "cpu")), abs=1e-4
    )
    assert 0 < share["macs"] < 1  # SIN's element-wise work is on the CPU, the convolution's MACs on the NPU
    time = report["estimated_time_ms"]
    assert time["npu"] == report["inference_time_ms"] and time["cpu"] > 0
    assert time["total"] == pytest.approx(time["npu"] + time["cpu"], abs=1e-5)
    assert (
        "not by Vela" in report["cpu_estimate"]["method"] and "cycles per operation" in report["cpu_estimate"]["method"]
    )
    assert all(f["dtype"] and f["reason"] for f in report["fallback"])
    m = edgeml.verify(sine.out, keypair[1]).manifest
    device = m["metrics"]["device"]
    assert device["npu_share"] == share and {f["op"] for f in device["fallback"]} == cpu_ops
    assert "SIN ×1 (float32" in m["decision"]["reason"] and "+ CPU ≈" in m["decision"]["reason"]
    assert f"({share['operators']:.0%})" in m["decision"]["reason"]


@pytest.mark.slow
def test_min_npu_share_refuses_a_model_below_it_naming_the_operators(sine, sine_pt2, tmp_path, keypair):
    share = json.loads((sine.out / "vela_report.json").read_text())["npu_share"]["operators"]
    assert share < 0.9
    with pytest.raises(TargetError) as info:
        _compile(sine_pt2, tmp_path / "out", keypair[0], tmp_path / "cache", min_npu_share="0.9")
    message = info.value.message
    assert message.startswith("min_npu_share=0.9: Vela placed") and f"({share:.1%})" in message
    assert "SIN ×1" in message and "SIN:" in message  # the operator, and Vela's reason for it
    assert "lower min_npu_share" in info.value.hint
    assert not (tmp_path / "out").exists()


def test_min_npu_share_outside_0_to_1_or_with_int8_mixed_is_refused_before_any_work():
    import onnx

    target = load_target("ethos-u55-128")
    model = onnx.load(DIGITS / "model.onnx")
    for options, words in (
        ({"min_npu_share": "90"}, "is not a share between 0 and 1"),
        ({"min_npu_share": "0.9", "precision": "int8-mixed"}, "int8-mixed keeps layers in float32"),
    ):
        recipe = make_recipe(target.recipe_type, target.spec.id, target.spec.recipe_defaults, options)
        with pytest.raises(TargetError) as info:
            target.plan(model, recipe)
        assert words in info.value.message and "min_npu_share" in info.value.message


def test_decomposed_prelu_is_exact_in_float():
    import torch
    from torch import nn

    from edgeml.compiler.lowerings.decompose_prelu import decompose_prelu

    class TwoPrelus(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.prelu1 = nn.Conv2d(1, 4, 3), nn.PReLU(4)
            self.fc, self.prelu2 = nn.Linear(36, 5), nn.PReLU(5)

        def forward(self, x):
            return self.prelu2(self.fc(self.prelu1(self.conv(x)).flatten(1)))

    torch.manual_seed(0)
    module = TwoPrelus().eval()
    with torch.no_grad():  # slopes on both sides of 0 and above 1, as MTCNN's trained ones are
        module.prelu1.weight.copy_(torch.tensor([-0.5, 0.0, 0.25, 1.3]))
    x = torch.randn(3, 1, 5, 5)
    graph = torch.export.export(module, (x,)).module()
    assert decompose_prelu(graph) == 2
    assert torch.ops.aten.prelu.default not in {n.target for n in graph.graph.nodes}
    torch.testing.assert_close(graph(x), module(x), rtol=1e-6, atol=1e-6)


def test_cpu_estimate_counts_macs_on_velas_convention():
    from edgeml.compiler.lowerings.estimate_cpu_fallback import COST, estimate_cpu_fallback, operator_macs
    from edgeml.compiler.lowerings.tflite_operators import TfliteOperator

    conv = TfliteOperator("CONV_2D", ("c",), ("INT8",), ((1, 6, 6, 8),), ((1, 8, 8, 3), (8, 3, 3, 3), (8,)), ("INT8",))
    fc = TfliteOperator("FULLY_CONNECTED", ("f",), ("FLOAT32",), ((1, 10),), ((1, 64), (10, 64)), ("FLOAT32",))
    sin = TfliteOperator("SIN", ("s",), ("FLOAT32",), ((1, 8, 8, 8),), ((1, 8, 8, 8),), ("FLOAT32",))
    dequantize = TfliteOperator("DEQUANTIZE", ("d",), ("FLOAT32",), ((1, 4, 4, 2),), ((1, 4, 4, 2),), ("INT8",))
    assert [operator_macs(op) for op in (conv, fc, sin, dequantize)] == [6 * 6 * 8 * 27, 640, 512, 0]
    estimate = estimate_cpu_fallback([conv, fc, sin, dequantize], clock_mhz=500)
    cycles = 6 * 6 * 8 * 27 * COST["int8_matrix"] + (640 + 512) * COST["float32"] + 32 * COST["convert"]
    assert estimate.macs == 6 * 6 * 8 * 27 + 640 + 512 and estimate.cycles == round(cycles)
    assert estimate.ms == pytest.approx(cycles / 500e3) and "500 MHz" in estimate.method()


def test_the_quantizer_puts_the_activations_an_npu_runs_in_int8():
    """Without any conversion: after prepare/convert_pt2e every activation litert-torch's patterns leave float
    sits between a dequantize and a quantize, TANH and SOFTMAX at the scales their TFLite int8 kernels need."""
    import torch
    from litert_torch.quantize import pt2e_quantizer
    from torch import nn
    from torchao.quantization.pt2e import quantize_pt2e

    from edgeml.compiler.lowerings.decompose_prelu import decompose_prelu
    from edgeml.compiler.lowerings.quantize_pt2e_to_tflite import _quantizer

    class Activations(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2, self.conv3 = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)
            self.prelu, self.fc = nn.PReLU(4), nn.Linear(4 * 3 * 3, 3)

        def forward(self, x):
            x = nn.functional.leaky_relu(self.conv1(x), 0.1)
            x = torch.tanh(self.conv2(self.prelu(x)))
            x = nn.functional.hardswish(self.conv3(x))
            return self.fc(x.flatten(1)).softmax(dim=1)

    torch.manual_seed(0)
    graph = torch.export.export(Activations().eval(), (torch.randn(1, 1, 5, 5),)).module()
    assert decompose_prelu(graph) == 1
    config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True)
    prepared = quantize_pt2e.prepare_pt2e(graph, _quantizer(pt2e_quantizer, ()).set_global(config))
    for _ in range(4):
        prepared(torch.randn(1, 1, 5, 5))
    converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    aten = torch.ops.aten
    checked = {aten.leaky_relu.default, aten.tanh.default, aten.hardswish.default, aten.softmax.int,
               aten.minimum.default, aten.add.Tensor}  # fmt: skip
    found = {}
    for node in converted.graph.nodes:
        if node.op == "call_function" and node.target in checked:
            (user,) = node.users
            assert "dequantize" in str(node.args[0].target) and "quantize_per_tensor" in str(user.target), node
            found[node.target] = user.args[1:3]  # (scale, zero point) of its output
    assert set(found) == checked
    assert found[aten.tanh.default] == (1 / 128, 0) and found[aten.softmax.int] == (1 / 256, -128)


def test_messages_cut_litert_tensor_names_to_their_last_component():
    from edgeml.compiler.lowerings.vela_report import short_tensor_names

    long = "edgeml.x._named_io.<locals>.NamedIO/pkg.mtcnn.RNet_wrapped/torch.nn.modules.activation.PReLU_prelu1;2"
    assert short_tensor_names(f"unsupported DataType Float32 ({long}_act) must be") == (
        "unsupported DataType Float32 (PReLU_prelu1;2_act) must be"
    )
    kept = "Stride>3 is only supported IF (dilation = 1 AND padding = VALID); serving_default_output_1_output, 1.5"
    assert short_tensor_names(kept) == kept

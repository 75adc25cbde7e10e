"""Per-layer numerics of NNCF-quantized OpenVINO IRs, through the real toolchain: the digits CNN quantized by
NNCF, run by OpenVINO's CPU plugin with every INT8 layer's output added, against ONNX Runtime's float run."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

import edgeml
from edgeml.calibration.read_npz import read_npz
from edgeml.compiler.intake import onnx_signature
from edgeml.compiler.ir_layer_numerics import ir_layer_numerics
from edgeml.compiler.ir_quantized_layers import ir_quantized_layers
from edgeml.compiler.layer_numerics import LayerProbe

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


@pytest.fixture(scope="module")
def int8_ir(tmp_path_factory, keypair) -> Path:
    out = tmp_path_factory.mktemp("ov") / "int8"
    edgeml.compile(
        str(DIGITS / "model.onnx"), "cpu-openvino", key=keypair[0], out=out, calib=DIGITS / "calib.npz",
        eval_data=DIGITS / "eval.npz", options={"precision": "int8"}, cache_dir=tmp_path_factory.mktemp("cache"),
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def probe() -> LayerProbe:
    model = onnx.load(DIGITS / "model.onnx")
    data = read_npz(DIGITS / "calib.npz", onnx_signature(model).input_names)
    return LayerProbe(model.SerializeToString(), data, onnx_signature(model))


def test_explain_reports_every_int8_layer_of_the_ir_with_its_numbers(int8_ir):
    explain = json.loads((int8_ir / "explain.json").read_text())
    rows = explain["layers"]["int8"]
    names = {la.name for la in _layers(int8_ir)}
    assert {r["layer"] for r in rows} == names and len(rows) >= 4  # three convs and the Gemm at least
    for r in rows:
        assert r["precision"] == "int8" and 20.0 < r["sqnr_db"] < 80.0 and 0.99 < r["cosine"] <= 1.0
        assert 0.0 <= r["sqnr_drop_db"] < 40.0  # the first conv's upstream is the rounded input, not "infinity"
    ranged = [r for r in rows if r["int8_min"] is not None]
    assert ranged and all(r["int8_min"] < r["int8_max"] and 0.0 <= r["clipping_rate"] < 0.1 for r in ranged)


def test_each_int8_layer_carries_its_weight_count(int8_ir):
    """What keeping it in float costs: the quantized weight's elements, not its scales; none for ReduceMean."""
    weights = {la.name: la.weights for la in _layers(int8_ir)}
    assert weights == {"node_conv2d": 144, "node_conv2d_1": 4608, "node_conv2d_2": 18432, "node_mean": 0,
                       "node_linear": 640}  # fmt: skip


def test_a_layer_kept_in_float_is_reported_float_and_loses_less_than_in_int8(int8_ir, probe, tmp_path):
    xml, weights = (int8_ir / "model.xml").read_bytes(), (int8_ir / "model.bin").read_bytes()
    all_int8 = {r.layer: r for r in ir_layer_numerics(xml, weights, probe)}
    mixed_xml, mixed_bin = _ir_with_float(["node_linear"], tmp_path)
    mixed = {r.layer: r for r in ir_layer_numerics(mixed_xml, mixed_bin, probe, ("node_linear",))}
    assert mixed["node_linear"].precision == "float" and all_int8["node_linear"].precision == "int8"
    assert mixed["node_linear"].sqnr_db > all_int8["node_linear"].sqnr_db + 1.0
    assert mixed["node_linear"].sqnr_drop_db < all_int8["node_linear"].sqnr_drop_db


def _layers(artifact: Path):
    return ir_quantized_layers(
        (artifact / "model.xml").read_bytes(), (artifact / "model.bin").read_bytes(), onnx.load(DIGITS / "model.onnx")
    )


def _ir_with_float(ignored: list[str], scratch: Path) -> tuple[bytes, bytes]:
    """The digits IR quantized by NNCF with `ignored` layers left in float (the int8-mixed lowering)."""
    from edgeml.compiler.lowerings import QuantizeWithNNCF
    from edgeml.compiler.lowerings.openvino_ir import IR_BIN, IR_XML
    from edgeml.compiler.passes.base import PassContext

    model = onnx.load(DIGITS / "model.onnx")
    signature = onnx_signature(model)
    lowering = QuantizeWithNNCF(QuantizeWithNNCF.Config(ignored=tuple(ignored)))
    calibration = read_npz(DIGITS / "calib.npz", signature.input_names)
    ctx = PassContext(signature=signature, calibration=calibration, scratch=scratch)
    lowered = lowering.apply(model.SerializeToString(), ctx)
    return lowered.files[IR_XML], lowered.files[IR_BIN]

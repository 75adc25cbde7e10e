"""`edgeml compile --max-memory`: a budget too small to keep every activation is honoured by streaming, with the
decision and layer figures of an unbounded compile; one too small for a single sample stops cleanly."""

from __future__ import annotations

import json
import logging

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import edgeml
from edgeml.cli import main
from edgeml.compiler.memory_budget import MemoryBudgetError, current_rss_bytes

pytestmark = pytest.mark.slow

CHANNELS, SIZE, SAMPLES = 32, 128, 32  # NOTE: 2 MiB per activation tensor per sample, ~13 MiB for all


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("convnet")
    nodes, weights, prev, cin = [], [], "x", 3
    for i in range(3):
        w = rng.normal(scale=(2 / (9 * cin)) ** 0.5, size=(CHANNELS, cin, 3, 3)).astype(np.float32)
        weights.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [
            helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"),
        ]
        prev, cin = f"r{i}", CHANNELS
    head = rng.normal(scale=0.2, size=(4, CHANNELS)).astype(np.float32)
    weights.append(numpy_helper.from_array(head, "head_w"))
    nodes += [
        helper.make_node("GlobalAveragePool", [prev], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "head_w"], ["y"], name="head", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, folder / "model.onnx")
    x = np.random.default_rng(1).uniform(-1, 1, size=(SAMPLES, 3, SIZE, SIZE)).astype(np.float32)
    np.savez(folder / "calib.npz", x=x)
    np.savez(folder / "eval.npz", x=x[:8])
    return folder


def _compile(folder, out, keypair, **kwargs):
    return edgeml.compile(
        str(folder / "model.onnx"), "cpu-ort", calib=folder / "calib.npz", eval_data=folder / "eval.npz",
        key=keypair[0], out=out, no_cache=True, **kwargs,
    )  # fmt: skip


def _layers(out) -> dict[str, dict]:
    explain = json.loads((out / "explain.json").read_text())
    return {row["layer"]: row for row in explain["layers"]["int8-static"]}


def test_a_budget_too_small_to_keep_activations_streams_to_the_same_decision(conv_model, tmp_path, keypair, caplog):
    free = _compile(conv_model, tmp_path / "free", keypair)
    budget = current_rss_bytes() + 250 * 2**20  # NOTE: 32 samples' activations (~420 MiB) cannot be kept
    with caplog.at_level(logging.INFO, logger="edgeml.compiler.layer_numerics"):
        tight = _compile(conv_model, tmp_path / "tight", keypair, max_memory=budget)
    assert "per-layer probe streams 32 samples" in caplog.text
    assert tight.decision.chosen == free.decision.chosen
    a, b = _layers(free.out), _layers(tight.out)
    assert a.keys() == b.keys() and a
    for name in a:
        assert b[name]["sqnr_db"] == pytest.approx(a[name]["sqnr_db"], abs=2e-3)
        assert b[name]["cosine"] == pytest.approx(a[name]["cosine"], abs=2e-6)


def test_a_budget_below_one_sample_stops_with_a_clear_error(conv_model, tmp_path, keypair):
    with pytest.raises(MemoryBudgetError) as caught:
        _compile(conv_model, tmp_path / "none", keypair, max_memory="64M")  # NOTE: less than Python itself holds
    assert "memory budget" in caught.value.message and "--max-memory" in caught.value.hint
    assert not (tmp_path / "none").exists()


def test_cli_reports_a_budget_that_cannot_fit_and_a_size_that_is_not_one(conv_model, tmp_path, keypair):
    args = [str(conv_model / "model.onnx"), "-t", "cpu-ort", "--key", str(keypair[0]), "--no-cache"]
    result = CliRunner().invoke(main, ["compile", *args, "-o", str(tmp_path / "a"), "--max-memory", "1M"])
    assert result.exit_code == 2 and "memory budget" in result.output and "hint" in result.output
    result = CliRunner().invoke(main, ["compile", *args, "-o", str(tmp_path / "b"), "--max-memory", "lots"])
    assert result.exit_code == 2 and "not a size" in result.output

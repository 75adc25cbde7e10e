"""Fidelity that cannot be blind: every figure over all samples, per channel, with SNR, relative error and, on
probability outputs, decision agreement; the budget judges the figure that sees the damage."""

from __future__ import annotations

import numpy as np
import pytest

import edgeml.calibration  # noqa: F401  (first: edgeml.calibration and edgeml.compiler.evaluate import each other)
from edgeml.compiler.evaluate import fidelity
from edgeml.compiler.measure import FLOAT
from edgeml.compiler.select_candidate import Budget, budget_verdict, select_candidate, worst_cosine
from edgeml.errors import BudgetError
from edgeml.runtimes import open_session

BUDGET = Budget(max_drop=1.0, min_cosine=0.99)


def _sigmoid_model(path, shift: float) -> None:
    """speech = sigmoid(4·x + shift): one number per sample, like a voice-activity probability."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array([[4.0]], np.float32), "w"),
             numpy_helper.from_array(np.array([shift], np.float32), "b")]  # fmt: skip
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["z0"], name="linear"),
        helper.make_node("Add", ["z0", "b"], ["z"], name="bias"),
        helper.make_node("Sigmoid", ["z"], ["speech"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "vad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info("speech", TensorProto.FLOAT, ["batch", 1])], inits,
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _run(path, x: np.ndarray) -> dict[str, np.ndarray]:
    return open_session("onnxruntime", path).run({"x": x})


@pytest.fixture(scope="module")
def moved_probability(tmp_path_factory):
    """Float and a candidate whose probability moves by up to 0.42 (sigmoid(0.9) − sigmoid(−0.9)), run for real."""
    folder = tmp_path_factory.mktemp("vad")
    _sigmoid_model(folder / "float.onnx", 0.0)
    _sigmoid_model(folder / "candidate.onnx", 1.8)
    x = np.random.default_rng(0).uniform(-2.0, 2.0, (400, 1)).astype(np.float32)
    return _run(folder / "float.onnx", x), _run(folder / "candidate.onnx", x)


def test_a_one_number_output_never_reads_1_while_its_values_moved_by_0_4(moved_probability):
    ref, out = moved_probability
    r, o = ref["speech"].astype(np.float64), out["speech"].astype(np.float64)
    per_sample = (r * o).sum(1) / (np.linalg.norm(r, axis=1) * np.linalg.norm(o, axis=1))
    assert per_sample.mean() == pytest.approx(1.0)  # the old figure: blind by construction
    assert np.abs(r - o).max() > 0.4
    f = fidelity(ref, out)["speech"]
    assert f["cosine"] < 1.0 and f["worst_channel_cosine"] < 1.0
    assert f["max_abs_err"] > 0.4 and f["max_rel_err"] > 0.4
    assert f["sqnr_db"] < 20
    assert f["kind"] == "probability" and f["decision"] == "p > 0.5"
    assert f["decision_agreement"] < 0.99


def test_the_budget_rejects_it_on_decision_agreement_and_says_which_output(moved_probability):
    ref, out = moved_probability
    m = {"accuracy": None, "fidelity": fidelity(ref, out)}
    loose = Budget(max_drop=1.0, min_cosine=0.0, min_channel_cosine=-1.0)  # cosine floors out of the way
    miss = budget_verdict(m, {"accuracy": None}, loose)
    assert miss is not None and miss.startswith("output speech decides") and "p > 0.5" in miss
    assert "max error 0.4" in miss
    models = {
        FLOAT: {"accuracy": None, "fidelity": fidelity(ref, ref), "latency": {"p50_ms": 1.0}, "size_bytes": 4},
        "fp32": {"accuracy": None, "fidelity": fidelity(ref, ref), "latency": {"p50_ms": 1.0}, "size_bytes": 4},
        "int8-static": {**m, "latency": {"p50_ms": 0.1}, "size_bytes": 1},
    }
    decision = select_candidate(models, loose, 1.05, "latency", None)
    assert decision.chosen == "fp32" and decision.verdicts["int8-static"].startswith("rejected: output speech")


def test_identical_outputs_read_1_and_agree_fully(moved_probability):
    ref, _ = moved_probability
    f = fidelity(ref, ref)["speech"]
    assert f["cosine"] == 1.0 and f["worst_channel_cosine"] == 1.0 and f["decision_agreement"] == 1.0
    assert f["max_abs_err"] == 0.0 and f["max_rel_err"] == 0.0


def test_one_flipped_decision_in_many_is_not_rounded_away():
    ref = np.full((2_000_000, 1), 0.9, np.float32)
    out = ref.copy()
    out[7] = 0.3
    f = fidelity({"p": ref}, {"p": out})["p"]
    assert f["decision_agreement"] < 1.0 and f["cosine"] < 1.0


def test_a_softmax_output_is_judged_on_top1_agreement():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(200, 5))
    ref = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    out = ref[:, ::-1].copy()  # every row reordered: a different class wins
    f = fidelity({"probs": ref.astype(np.float32)}, {"probs": out.astype(np.float32)})["probs"]
    assert f["kind"] == "distribution" and f["decision"] == "top-1" and f["decision_agreement"] < 0.5
    miss = budget_verdict({"accuracy": None, "fidelity": {"probs": f}}, {"accuracy": None},
                          Budget(1.0, -1.0, -1.0))  # fmt: skip
    assert miss is not None and "top-1" in miss


def test_logits_and_embeddings_decide_nothing():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(64, 10)).astype(np.float32)
    f = fidelity({"y": logits}, {"y": logits + 0.01})["y"]
    assert f["kind"] == "scores" and "decision_agreement" not in f and f["top1_agreement"] > 0.9
    image = rng.random((4, 3, 32, 32)).astype(np.float32)  # [0, 1], but a map: 3072 values per sample
    assert fidelity({"img": image}, {"img": image})["img"]["kind"] == "values"


def test_the_cosine_floor_is_checked_on_the_worst_channel():
    """Box coordinates up to 320 beside one score channel below 1: the scores lose their pattern, the tensor's
    cosine does not notice, the channel's does."""
    rng = np.random.default_rng(3)
    ref = np.concatenate([rng.uniform(0, 320, (500, 4, 10)), rng.uniform(0, 1, (500, 1, 10))], axis=1)
    out = ref.copy()
    out[:, 4] = rng.uniform(0, 1, (500, 10))  # the score channel replaced by noise of the same range
    f = fidelity({"det": ref.astype(np.float32)}, {"det": out.astype(np.float32)})["det"]
    assert f["cosine"] > 0.999 and f["worst_channel"] == 4 and f["worst_channel_cosine"] < 0.9
    assert f["max_rel_err"] > 0.5  # of the score channel's own peak, not of the boxes' 320
    m = {"accuracy": None, "fidelity": {"det": f}}
    assert worst_cosine(m["fidelity"]) == f["worst_channel_cosine"]
    miss = budget_verdict(m, {"accuracy": None}, Budget(1.0, 0.99, min_channel_cosine=-1.0))
    assert miss is not None and miss.startswith("output det channel 4 has cosine")


def test_a_pinned_candidate_that_moves_probabilities_fails_with_the_reason(moved_probability):
    ref, out = moved_probability
    models = {
        FLOAT: {"accuracy": None, "fidelity": fidelity(ref, ref), "latency": {"p50_ms": 1.0}, "size_bytes": 4},
        "int8-static": {"accuracy": None, "fidelity": fidelity(ref, out), "latency": {"p50_ms": 0.1}, "size_bytes": 1},
    }
    with pytest.raises(BudgetError, match="--min-agreement"):
        select_candidate(models, BUDGET, 1.05, "latency", "int8-static")

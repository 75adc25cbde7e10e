"""Closed-loop evaluation of a stateful model (issue 12 item 2): each model carries its own state through the
ordered sequences, so drift that accumulates through the state shows; fed the float model's states (open loop)
it does not.

The models are exact arithmetic on small numbers (an accumulator `stateN = state + g·x`, `prob = sigmoid(20·
(stateN − 0.5))`), so every figure holds on any CPU: the "candidate" is the same graph with a 5 % gain error.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeml.calibration.read_dataset import read_dataset
from edgeml.compiler.check_model import check_model
from edgeml.compiler.closed_loop import run_closed_loop, with_float_states
from edgeml.compiler.evaluate import fidelity, run_dataset
from edgeml.compiler.intake import onnx_signature
from edgeml.errors import CalibrationError
from edgeml.runtimes import open_session

STEPS = 100  # per sequence: the float state climbs 0.00 → 0.99, crossing the decision at step 50
STEP_INPUT = 0.01


def _accumulator(path, gain: float, state_out_shape=("N", 1)):
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Mul", ["x", "gain"], ["gx"]),
        helper.make_node("Add", ["state", "gx"], ["stateN"]),
        helper.make_node("Sub", ["stateN", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "slope"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["prob"]),
    ]
    inits = [
        helper.make_tensor("gain", TensorProto.FLOAT, [], [gain]),
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("slope", TensorProto.FLOAT, [], [20.0]),
    ]
    graph = helper.make_graph(
        nodes,
        "accumulator",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 1]) for n in ("x", "state")],
        [
            helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("stateN", TensorProto.FLOAT, list(state_out_shape)),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def models(tmp_path):
    return _accumulator(tmp_path / "float.onnx", 1.0), _accumulator(tmp_path / "drift.onnx", 1.05)


def _data(tmp_path, sequences: int = 2, with_ids: bool = True, **extra):
    n = STEPS * sequences
    arrays = {"x": np.full((n, 1), STEP_INPUT, np.float32), "state": np.zeros((n, 1), np.float32)}
    if with_ids:
        arrays["edgeml_sequences"] = np.repeat(np.arange(sequences), STEPS)
    path = tmp_path / f"data_{sequences}_{with_ids}.npz"
    np.savez(path, **arrays, **extra)
    return path


def _read(path, model):
    import onnx

    return read_dataset(path, onnx_signature(onnx.load(str(model))), "evaluation")


def test_closed_loop_sees_drift_accumulating_through_state_that_open_loop_misses(tmp_path, models):
    float_model, drift_model = models
    reference, candidate = open_session("onnxruntime", float_model), open_session("onnxruntime", drift_model)
    data = with_float_states(reference, _read(_data(tmp_path), float_model), keep_recurrent=True)
    assert data.recurrent["state"].output == "stateN"  # inferred: same shape, a state's name

    closed = fidelity(run_dataset(reference, data), run_dataset(candidate, data))
    opened = fidelity(run_dataset(reference, data.open_loop()), run_dataset(candidate, data.open_loop()))
    # open loop: one step's error (5 % of 0.01); closed loop: 5 % of the whole climb (0.05 by step 100)
    assert opened["stateN"]["max_abs_err"] == pytest.approx(0.05 * STEP_INPUT, rel=0.01)
    assert closed["stateN"]["max_abs_err"] == pytest.approx(0.05 * STEP_INPUT * STEPS, rel=0.01)
    assert closed["stateN"]["sqnr_db"] < opened["stateN"]["sqnr_db"] - 20
    # the candidate's drifting state crosses the decision earlier: decisions flip only closed-loop
    assert opened["prob"]["decision_agreement"] > closed["prob"]["decision_agreement"]
    assert closed["prob"]["decision_agreement"] <= 1 - 4 / (2 * STEPS)  # ≥ 2 flips in each sequence
    assert opened["prob"]["decision_agreement"] >= 1 - 2 / (2 * STEPS)  # at most the tie at step 50


def test_sequence_boundaries_reset_the_state(tmp_path, models):
    float_model, _ = models
    session = open_session("onnxruntime", float_model)
    two = run_closed_loop(session, _read(_data(tmp_path), float_model))["stateN"][:, 0]
    np.testing.assert_allclose(two[:STEPS], two[STEPS:])  # the second sequence starts from zeros again
    assert two[0] == pytest.approx(STEP_INPUT) and two[STEPS - 1] == pytest.approx(STEP_INPUT * STEPS, rel=1e-5)
    one = run_closed_loop(session, _read(_data(tmp_path, with_ids=False), float_model))["stateN"][:, 0]
    assert one[STEPS] == pytest.approx(STEP_INPUT * (STEPS + 1), rel=1e-5)  # no ids: one sequence, carried on


def test_calibration_gets_the_float_models_own_states_and_feeds_them(tmp_path, models):
    float_model, _ = models
    data = _read(_data(tmp_path), float_model)
    assert not data.inputs["state"].any()  # the data held zeros
    calib = with_float_states(open_session("onnxruntime", float_model), data)
    assert not calib.recurrent  # calibration feeds the stored states, open loop
    expected = np.tile(np.arange(STEPS, dtype=np.float32) * STEP_INPUT, 2)
    np.testing.assert_allclose(calib.inputs["state"][:, 0], expected, atol=1e-6)
    assert any("closed-loop state over 2 sequences (200 steps)" in n for n in calib.notes)


def test_a_state_left_out_of_the_data_starts_from_zeros(tmp_path, models):
    float_model, _ = models
    path = tmp_path / "x_only.npz"
    np.savez(path, x=np.full((STEPS, 1), STEP_INPUT, np.float32))
    data = _read(path, float_model)
    assert data.inputs["state"].shape == (STEPS, 1) and not data.inputs["state"].any()
    out = run_closed_loop(open_session("onnxruntime", float_model), data)
    assert out["stateN"][-1, 0] == pytest.approx(STEP_INPUT * STEPS, rel=1e-5)


def test_check_says_what_was_inferred_and_a_spec_turns_it_off(tmp_path, models):
    float_model, _ = models
    calib = _data(tmp_path)
    report = check_model(float_model, "cpu-ort", calib=str(calib))
    state = {i["name"]: i for i in report.inputs}["state"]
    assert state["from_output"] == "stateN" and "inferred" in state["fed_back"]
    assert any("2 ordered sequence(s), 200 steps; closed loop: state ← stateN" in n for n in report.notes)
    off = check_model(float_model, "cpu-ort", calib=str(calib), inputs={"state": {"from_output": "none"}})
    assert {i["name"]: i for i in off.inputs}["state"]["from_output"] is None


def test_bad_specs_are_clear_errors(tmp_path, models):
    float_model, _ = models
    calib = _data(tmp_path)
    with pytest.raises(CalibrationError, match="from_output 'h' is not an output of the model") as info:
        check_model(float_model, "cpu-ort", calib=str(calib), inputs={"state": {"from_output": "h"}})
    assert "prob" in info.value.hint and "stateN" in info.value.hint
    bad_ids = tmp_path / "bad_ids.npz"
    np.savez(bad_ids, x=np.zeros((4, 1), np.float32), state=np.zeros((4, 1), np.float32), edgeml_sequences=[0, 1])
    with pytest.raises(CalibrationError, match="edgeml_sequences is int64\\[2\\], not one integer sequence id"):
        _read(bad_ids, float_model)


def test_an_output_of_another_shape_at_run_time_is_named(tmp_path):
    model = _accumulator(tmp_path / "wide.onnx", 1.0, state_out_shape=("N", "K"))
    data = _read(_data(tmp_path), model)
    session = open_session("onnxruntime", model)

    class Widening:  # a runtime that gives the state back wider than it takes it
        signature = session.signature

        def run(self, feeds):
            out = session.run(feeds)
            return out | {"stateN": np.repeat(out["stateN"], 2, axis=1)}

    with pytest.raises(CalibrationError, match=r"input 'state' takes \[1, 1\].*output 'stateN' gave \[1, 2\]"):
        run_closed_loop(Widening(), data)


def test_compile_judges_a_stateful_model_closed_loop_and_reports_open_loop_beside(tmp_path, models, keypair):
    import json

    import edgeml

    float_model, _ = models
    result = edgeml.compile(
        float_model, "cpu-ort", calib=_data(tmp_path), key=keypair[0], out=tmp_path / "out", no_cache=True
    )
    assert any("evaluated closed-loop over 2 sequences (200 steps)" in n for n in result.notes), result.notes
    assert any("calibrated with the float model's own closed-loop state" in n for n in result.notes)
    explain = json.loads((tmp_path / "out" / "explain.json").read_text())
    measured = [c for c in explain["candidates"] if c.get("fidelity")]
    assert measured
    for c in measured:
        prob = c["fidelity"]["prob"]
        assert prob["loop"] == "closed" and set(prob["open_loop"]) >= {"decision_agreement", "sqnr_db"}


def test_initial_data_starts_each_sequence_from_the_stored_state(tmp_path, models):
    import onnx

    from edgeml.calibration.input_layout import parse_input_specs

    float_model, _ = models
    path = tmp_path / "start.npz"
    np.savez(
        path,
        x=np.full((2 * STEPS, 1), STEP_INPUT, np.float32),
        state=np.full((2 * STEPS, 1), 0.5, np.float32),
        edgeml_sequences=np.repeat([0, 1], STEPS),
    )
    specs = parse_input_specs({"state": {"from_output": "stateN", "initial": "data"}}, "recipe")
    data = read_dataset(path, onnx_signature(onnx.load(str(float_model))), "evaluation", specs)
    out = run_closed_loop(open_session("onnxruntime", float_model), data)["stateN"][:, 0]
    assert out[0] == pytest.approx(0.5 + STEP_INPUT) and out[STEPS] == pytest.approx(0.5 + STEP_INPUT)
    assert out[STEPS - 1] == pytest.approx(0.5 + STEP_INPUT * STEPS, rel=1e-5)  # carried, not re-read

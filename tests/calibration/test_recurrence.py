"""Which inputs are fed back from an output (given or inferred), sequence boundaries, and the errors for bad specs."""

from __future__ import annotations

import numpy as np
import pytest

from edgeml.calibration.input_layout import parse_input_flags, parse_input_specs
from edgeml.calibration.recurrence import decide_recurrence, sequence_bounds, sequence_ids
from edgeml.errors import CalibrationError
from edgeml.signature import ModelSignature, TensorSpec


def _sig(inputs, outputs) -> ModelSignature:
    return ModelSignature(
        tuple(TensorSpec(n, d, s) for n, d, s in inputs), tuple(TensorSpec(n, d, s) for n, d, s in outputs)
    )


SILERO = _sig(
    [("input", "float32", ("batch", "sequence")), ("state", "float32", (2, "batch", 128)), ("sr", "int64", ())],
    [("output", "float32", ("batch", 1)), ("stateN", "float32", ("AddstateN_dim_0", "batch", "AddstateN_dim_2"))],
)
LSTM = _sig(
    [("x", "float32", ("N", 8)), ("h0", "float32", (1, "N", 16)), ("c0", "float32", (1, "N", 16))],
    [("y", "float32", ("N", 4)), ("hn", "float32", (1, "N", 16)), ("cn", "float32", (1, "N", 16))],
)


def test_state_and_lstm_pairs_are_inferred_and_say_so():
    found = decide_recurrence(SILERO, {})
    assert list(found) == ["state"] and found["state"].output == "stateN"
    assert found["state"].how.startswith("inferred") and "from_output=none" in found["state"].how
    lstm = decide_recurrence(LSTM, {})
    assert {k: r.output for k, r in lstm.items()} == {"h0": "hn", "c0": "cn"}


def test_nothing_is_inferred_when_ambiguous_or_not_state_like():
    two = _sig([("state", "float32", ("N", 4))], [("state_a", "float32", ("N", 4)), ("state_b", "float32", ("N", 4))])
    assert decide_recurrence(two, {}) == {}
    plain = _sig([("x", "float32", ("N", 4))], [("x_out", "float32", ("N", 4))])
    assert decide_recurrence(plain, {}) == {}


def test_a_spec_names_the_output_or_turns_inference_off():
    specs = parse_input_specs(parse_input_flags(["state:from_output=stateN", "state:initial=data"]), "flags")
    found = decide_recurrence(SILERO, specs)
    assert found["state"].how == "given" and found["state"].initial == "data"
    assert decide_recurrence(SILERO, parse_input_specs({"state": {"from_output": "none"}}, "recipe")) == {}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"state": {"from_output": "stateX"}}, r"from_output 'stateX' is not an output of the model"),
        ({"state": {"from_output": "output"}}, r"cannot be fed from output output: float32\[batch, 1\].*shapes differ"),
        ({"state": {"from_output": "stateN", "constant": 0.0}}, "both a constant and from_output"),
    ],
)
def test_bad_specs_are_refused_naming_input_and_outputs(spec, match):
    with pytest.raises(CalibrationError, match=match) as info:
        decide_recurrence(SILERO, parse_input_specs(spec, "recipe"))
    assert info.value.hint and "state" in str(info.value)


def test_dtype_mismatch_and_bad_initial_are_refused():
    sig = _sig([("state", "float32", ("N", 4))], [("stateN", "float16", ("N", 4))])
    with pytest.raises(CalibrationError, match="dtypes differ"):
        decide_recurrence(sig, parse_input_specs({"state": {"from_output": "stateN"}}, "recipe"))
    with pytest.raises(CalibrationError, match="initial 'ones' is neither zeros nor data"):
        parse_input_specs({"state": {"initial": "ones"}}, "recipe")


def test_sequence_ids_give_boundaries_and_bad_ids_are_refused():
    ids = sequence_ids(np.array([0, 0, 0, 1, 1, 0, 0]), 7, "data x.npz")
    assert sequence_bounds(ids, 7) == [(0, 3), (3, 5), (5, 7)]  # a new sequence wherever the id changes
    assert sequence_bounds(None, 4) == [(0, 4)]
    with pytest.raises(CalibrationError, match="not one integer sequence id per sample") as info:
        sequence_ids(np.array([0, 1]), 7, "data x.npz")
    assert "numpy.repeat" in info.value.hint
    with pytest.raises(CalibrationError, match="float64"):
        sequence_ids(np.zeros(7), 7, "data x.npz")

"""tflite-cpu's dynamic-range INT8 candidate (ai-edge-quantizer dynamic_wi8_afp32: int8 weights, float
activations) beside fp32 and full INT8: built from the float TFLite, run by the real LiteRT interpreter, within
budget on digits, pinnable from a recipe file or -O, chosen by the measured figures under the target's
budget-and-speed rule; the check, the plan and the lowering agree on which operators get int8 weights."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import edgeml
from edgeml.compiler.lowerings import ConvertToTflite, ConvertToTfliteDynamic, ConvertToTfliteInt8
from edgeml.compiler.measure import FLOAT
from edgeml.compiler.select_candidate import Budget, budget_verdict, select_candidate
from edgeml.errors import TargetError
from edgeml.targets import load_target
from edgeml.targets.litert.tflite_dynamic_range import DYNAMIC_WEIGHT_OPS, dynamic_range
from edgeml.targets.recipe import make_recipe, parse_option_flags

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
TARGET = load_target("tflite-cpu")


def _recipe(**options):
    return make_recipe(TARGET.recipe_type, TARGET.spec.id, TARGET.spec.recipe_defaults, options)


def _compile(out: Path, key: Path, **kwargs):
    return edgeml.compile(
        str(DIGITS / "model.pt2"), key=key, out=out, calib=DIGITS / "calib.npz", eval_data=DIGITS / "eval.npz",
        **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def auto(tmp_path_factory, keypair):
    """The default recipe: every candidate built, measured and judged."""
    return _compile(tmp_path_factory.mktemp("auto") / "digits", keypair[0], target="tflite-cpu").manifest


@pytest.fixture(scope="module")
def pinned(tmp_path_factory, keypair):
    """int8-dynamic pinned by a recipe file, as a user reproduces or fixes a compile."""
    folder = tmp_path_factory.mktemp("pinned")
    recipe = folder / "recipe.toml"
    recipe.write_text('target = "tflite-cpu"\n[options]\nprecision = "int8-dynamic"\n')
    _compile(folder / "digits", keypair[0], recipe_file=recipe)
    return folder / "digits"


# ---------------------------------------------------------------------------------------------- auto


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_auto_measures_fp32_int8_dynamic_and_full_int8_and_ships_by_the_rule(auto):
    candidates, decision = auto["decision"]["candidates"], auto["decision"]
    assert set(candidates) == {"fp32", "int8-dynamic", "int8"}
    assert {c["runtime"] for c in candidates.values()} == {"litert"}
    options = auto["provenance"]["recipe"]["options"]
    assert options["precision"] == "auto" and options["min_speedup"] == 1.05
    budget, ref = Budget(**decision["budget"]), {"accuracy": auto["metrics"]["float_accuracy"]}
    fp32_ms = candidates["fp32"]["latency"]["p50_ms"]
    passing = [
        name
        for name, c in candidates.items()
        if budget_verdict(c, ref, budget) is None
        and (name == "fp32" or fp32_ms / c["latency"]["p50_ms"] >= options["min_speedup"])
    ]
    assert auto["precision"] == min(passing, key=lambda n: candidates[n]["latency"]["p50_ms"])
    assert candidates[auto["precision"]]["latency"]["p50_ms"] <= fp32_ms  # never slower than LiteRT's own float
    assert decision["verdicts"][auto["precision"]].startswith("shipped")


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_int8_dynamic_is_within_budget_on_digits_with_a_third_of_the_float_size(auto):
    dynamic, fp32 = auto["decision"]["candidates"]["int8-dynamic"], auto["decision"]["candidates"]["fp32"]
    assert dynamic["accuracy"] >= auto["metrics"]["float_accuracy"] - 1.0
    assert budget_verdict(dynamic, {"accuracy": auto["metrics"]["float_accuracy"]}, Budget(1.0, 0.99)) is None
    assert dynamic["size_bytes"] < fp32["size_bytes"] / 2.5
    verdict = auto["decision"]["verdicts"]["int8-dynamic"]
    assert verdict.startswith(("shipped", "passes")) or "float speed on this host" in verdict  # never accuracy


@pytest.mark.slow  # a LiteRT conversion and PT2E calibration per candidate: minutes on 2 cores
def test_the_plan_notes_in_the_manifest_say_which_operators_get_int8_weights(auto):
    notes = auto["target"]["notes"]
    assert any(n.startswith("int8-dynamic (ai-edge-quantizer dynamic_wi8_afp32): int8 weights on 4 of") for n in notes)
    assert any(n.startswith("int8: int8 inputs and outputs") for n in notes)


# -------------------------------------------------------------------------------------------- pinned


def test_pinned_int8_dynamic_ships_alone_verified_and_records_its_recipe(pinned, keypair):
    m = edgeml.verify(pinned, keypair[1]).manifest
    assert m["precision"] == "int8-dynamic" and set(m["decision"]["candidates"]) == {"int8-dynamic"}
    assert m["decision"]["reason"].startswith("precision pinned to int8-dynamic")
    assert m["provenance"]["recipe"]["options"]["precision"] == "int8-dynamic"
    (lowering,) = [p for p in m["provenance"]["passes"] if p["name"] == "convert-to-tflite-int8-dynamic"]
    assert lowering["config"] == {"recipe": "dynamic_wi8_afp32"}
    assert any("ai-edge-quantizer recipe dynamic_wi8_afp32" in n for n in lowering["notes"])
    assert m["metrics"]["accuracy"] >= m["metrics"]["float_accuracy"] - 1.0


def test_the_litert_interpreter_runs_it_with_float_io_int8_weights_and_reproduces_the_self_test(pinned):
    from ai_edge_litert.interpreter import Interpreter

    m = json.loads((pinned / "manifest.json").read_text())
    interpreter = Interpreter(model_path=str(pinned / "model.tflite"))
    runner = interpreter.get_signature_runner()
    assert {d["dtype"] for d in (*runner.get_input_details().values(), *runner.get_output_details().values())} == {
        np.float32
    }
    with np.load(pinned / m["self_test"]["file"]) as z:
        feeds = {k.removeprefix("input/"): z[k] for k in z.files if k.startswith("input/")}
        expected = {k.removeprefix("expected/"): z[k] for k in z.files if k.startswith("expected/")}
    for i in range(len(next(iter(feeds.values())))):
        got = runner(**{name: values[i : i + 1] for name, values in feeds.items()})
        for name, want in expected.items():
            np.testing.assert_allclose(got[name], want[i : i + 1], atol=m["self_test"]["atol"])


def test_operators_with_int8_weights_are_the_ones_the_check_and_plan_predict(pinned):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(  # NOTE: no XNNPACK delegate: the model's own operators, as written
        model_path=str(pinned / "model.tflite"),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    dtypes = {d["index"]: d["dtype"] for d in interpreter.get_tensor_details()}
    built = Counter(
        op["op_name"]
        for op in interpreter._get_ops_details()
        if len(op["inputs"]) > 1 and dtypes.get(op["inputs"][1]) == np.int8
    )
    predicted = Counter(op.tflite_op for op in dynamic_range(onnx.load(DIGITS / "model.onnx")).quantized)
    assert built == predicted == Counter({"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1})


def test_the_rule_lists_exactly_the_ops_ai_edge_quantizer_quantizes_for_the_recipe():
    from ai_edge_quantizer import default_policy

    policy = json.loads(default_policy.DEFAULT_JSON_POLICY)
    assert set(policy["ops_per_config"]["dynamic_wi8_afp32"]) == DYNAMIC_WEIGHT_OPS


def test_option_flags_pin_it_and_refuse_what_the_target_lacks():
    assert _recipe(**parse_option_flags(["precision=int8-dynamic"])).precision == "int8-dynamic"
    with pytest.raises(TargetError) as info:
        _recipe(precision="int4")
    assert "auto, fp32, int8-dynamic, int8" in info.value.message


# ------------------------------------------------------------------------------ selection (fake figures)


def _figures(p50_ms: float, accuracy: float = 98.5, cosine: float = 0.9999) -> dict:
    fidelity = {"output": {"cosine": cosine, "worst_channel": 0, "worst_channel_cosine": cosine}}
    return {"latency": {"p50_ms": p50_ms}, "accuracy": accuracy, "fidelity": fidelity, "size_bytes": 1}


def _select(pinned=None, **candidates):
    recipe = _recipe()
    models = {FLOAT: _figures(0.034), **{k.replace("_", "-"): v for k, v in candidates.items()}}
    return select_candidate(models, Budget(1.0, 0.99), recipe.min_speedup, recipe.objective, pinned)


def test_selection_ships_int8_dynamic_when_it_measures_fastest_and_rejects_slower_full_int8():
    d = _select(fp32=_figures(0.029), int8_dynamic=_figures(0.023), int8=_figures(0.046))
    assert d.chosen == "int8-dynamic" and d.reason == "fastest of the candidates within budget"
    assert d.verdicts["int8"] == "rejected: 0.63× float speed on this host (needs ≥ 1.05×)"  # vs the fp32 TFLite


def test_selection_keeps_fp32_when_int8_dynamic_gains_less_than_min_speedup():
    d = _select(fp32=_figures(0.029), int8_dynamic=_figures(0.0285), int8=_figures(0.046))
    assert d.chosen == "fp32" and d.reason.startswith("float kept: ")
    assert "int8-dynamic 1.02× float speed on this host (needs ≥ 1.05×)" in d.reason


def test_selection_ships_full_int8_where_it_is_fastest_and_drops_an_out_of_budget_dynamic():
    d = _select(fp32=_figures(0.040), int8_dynamic=_figures(0.020, accuracy=96.0), int8=_figures(0.025))
    assert d.chosen == "int8" and d.verdicts["int8-dynamic"].startswith("rejected: accuracy 96.00%")


def test_selection_ships_a_pinned_candidate_even_when_slower_and_says_so():
    d = _select(pinned="int8", int8=_figures(0.046))
    assert d.chosen == "int8" and "slower than float on this host" in d.reason


# ------------------------------------------------------------------------------------- plan and check


def test_auto_plan_lowers_three_candidates_and_a_pinned_plan_one():
    model = onnx.load(DIGITS / "model.onnx")
    plan = TARGET.plan(model, _recipe())
    kinds = {name: type(c.lowering) for name, c in plan.candidates.items()}
    assert kinds == {"fp32": ConvertToTflite, "int8-dynamic": ConvertToTfliteDynamic, "int8": ConvertToTfliteInt8}
    for precision in ("fp32", "int8-dynamic", "int8"):
        assert list(TARGET.plan(model, _recipe(precision=precision)).candidates) == [precision]


def test_check_and_plan_report_the_same_int8_weight_rule():
    data = (DIGITS / "model.onnx").read_bytes()
    model = onnx.load_model_from_string(data)
    report = TARGET.check(data, model, TARGET.spec, _recipe())
    (note,) = report.notes
    assert note in TARGET.plan(model, _recipe()).notes
    assert "CONV_2D ×2, DEPTHWISE_CONV_2D, FULLY_CONNECTED" in note
    assert TARGET.check(data, model, TARGET.spec, _recipe(precision="int8")).notes == ()


def test_a_graph_without_weights_skips_int8_dynamic_and_the_check_says_why():
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu"), helper.make_node("Sigmoid", ["y"], ["z"], name="s")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    plan = TARGET.plan(model, _recipe())
    assert "int8-dynamic" not in plan.candidates and set(plan.candidates) == {"fp32", "int8"}
    report = TARGET.check(model.SerializeToString(), model, TARGET.spec, _recipe())
    assert report.notes[0].startswith("int8-dynamic not tried: no operator with constant weights")
    assert report.notes[0] in plan.notes


def test_edgeml_targets_lists_the_new_precision_and_its_option():
    from edgeml.cli import main

    listed = json.loads(CliRunner().invoke(main, ["targets", "--json"]).output)
    (spec,) = [t for t in listed if t["id"] == "tflite-cpu"]
    assert spec["precisions"] == ["fp32", "int8-dynamic", "int8", "int8-mixed"]
    options = json.loads(CliRunner().invoke(main, ["targets", "--options", "tflite-cpu", "--json"]).output)
    (precision,) = [o for o in options if o["name"] == "precision"]
    assert precision["default"] == "auto"
    assert precision["choices"] == ["auto", "fp32", "int8-dynamic", "int8", "int8-mixed"]

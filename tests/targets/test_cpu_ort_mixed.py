"""cpu-ort's int8-mixed pieces: which INT8 candidate a mix starts from (int8-static, or int8-dynamic on a
transformer), the dynamic plan that keeps named nodes in float, the layers a dynamic INT8 model offers, and
the mix on all-MiniLM-L6-v2 (slow). The accuracy-aware contract itself, on a tiny transformer as on the
other targets: tests/compiler/test_accuracy_aware.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgeml
from edgeml.compiler.build_candidate import onnx_build
from edgeml.compiler.content_cache import Blob
from edgeml.compiler.passes.base import PassContext
from edgeml.compiler.passes.quantize_dynamic import QuantizeDynamic
from edgeml.compiler.passes.quantize_static import QuantizeStatic
from edgeml.signature import ModelSignature
from edgeml.targets import load_target
from edgeml.targets.recipe import make_recipe

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
TARGET = load_target("cpu-ort")
LAYERS = {"q_proj": "MatMul", "k_proj": "MatMul", "ffn": "MatMul"}  # what dynamic INT8 computes in integers


def _attention(width: int = 8) -> onnx.ModelProto:
    """An embedding, two projections and a Softmax between MatMuls (a transformer to graph_kind), an FFN. The
    key projection's weights have one outlier per output channel: the lowest weight SQNR in INT8."""
    rng = np.random.default_rng(0)
    shapes = {"table": (16, width), "wq": (width, width), "wk": (width, width), "w1": (width, width)}
    weights = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    weights["wk"][0] *= 50
    n = helper.make_node
    nodes = [
        n("Gather", ["table", "ids"], ["x"], name="embed"), n("MatMul", ["x", "wq"], ["q"], name="q_proj"),
        n("MatMul", ["x", "wk"], ["k"], name="k_proj"), n("Transpose", ["k"], ["kt"], perm=[0, 2, 1], name="k_t"),
        n("MatMul", ["q", "kt"], ["s"], name="scores"), n("Softmax", ["s"], ["p"], axis=-1, name="softmax"),
        n("MatMul", ["p", "x"], ["a"], name="attend"), n("MatMul", ["a", "w1"], ["y"], name="ffn"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "attention", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, width])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _plan(model: onnx.ModelProto, precision: str):
    recipe = make_recipe(TARGET.recipe_type, TARGET.spec.id, TARGET.spec.recipe_defaults, {"precision": precision})
    return TARGET.plan(model, recipe)


def test_a_pinned_mix_on_a_transformer_starts_from_dynamic_int8():
    plan = _plan(_attention(), "int8-mixed")
    assert list(plan.candidates) == ["int8-dynamic"] and TARGET.mixed.base_for(plan.candidates) == "int8-dynamic"
    assert any("int8-mixed starts from int8-dynamic" in note for note in plan.notes)
    auto = _plan(_attention(), "auto")
    assert (
        list(auto.candidates) == ["fp32", "int8-dynamic"] and TARGET.mixed.base_for(auto.candidates) == "int8-dynamic"
    )
    assert TARGET.mixed.ranked_for("int8-dynamic") == 48  # a dynamic try needs no calibration: ~2 s on MiniLM


def test_a_mix_on_a_cnn_still_starts_from_static_int8():
    plan = _plan(onnx.load(DIGITS / "model.onnx"), "int8-mixed")
    assert list(plan.candidates) == ["int8-static"] == [TARGET.mixed.base_for(plan.candidates)] == [TARGET.mixed.base]
    assert TARGET.mixed.ranked_for("int8-static") is None  # the search's default
    mix = TARGET.mixed.plan(plan.candidates["int8-static"], ("node_linear",))
    assert [type(p) for p in mix.passes] == [QuantizeStatic] and mix.passes[0].config.exclude_nodes == ("node_linear",)


def test_the_dynamic_mix_keeps_the_named_nodes_float_and_offers_every_quantized_node(tmp_path):
    model = _attention()
    prepared = model.SerializeToString()
    base_plan = _plan(model, "int8-mixed").candidates["int8-dynamic"]
    mix_plan = TARGET.mixed.plan(base_plan, ("ffn", "embed"))
    assert [type(p) for p in mix_plan.passes] == [QuantizeDynamic]
    assert mix_plan.passes[0].config.exclude_nodes == ("ffn", "embed")
    assert base_plan.passes[0].config.exclude_nodes == ()  # the base plan is left as it was
    base, mix = (onnx_build(_run(p, prepared, tmp_path), "model.onnx") for p in (base_plan, mix_plan))

    layers = TARGET.mixed.layers(base, prepared)
    # float-model names; `scores`, `attend` have no weights; `embed`'s table is INT8 only in storage (below)
    assert {la.name: la.op for la in layers} == LAYERS
    assert layers[0].name == "k_proj"  # lowest weight SQNR first (not graph order): how the search cuts past its cap
    assert all(la.adjustable and la.weights == 64 for la in layers)  # 8 × 8 weights each: what float costs
    assert {la.name for la in TARGET.mixed.layers(mix, prepared)} == set(LAYERS) - {"ffn"}
    nodes = {n.name: n for n in onnx.load_model_from_string(mix.onnx.data).graph.node}
    assert nodes["ffn"].op_type == "MatMul" and list(nodes["ffn"].input) == ["a", "w1"]  # float, float weights
    assert list(nodes["embed"].input) == ["table", "ids"]  # a name the plan is given is excluded, whatever it is
    quantized_embed = {n.name: n for n in onnx.load_model_from_string(base.onnx.data).graph.node}["embed"]
    assert list(quantized_embed.input) == ["table_quantized", "ids"]
    assert "q_proj" not in nodes and nodes["q_proj_quant"].op_type == "MatMulInteger"


def _run(plan, model: bytes, scratch: Path) -> Blob:
    ctx = PassContext(ModelSignature((), ()), None, scratch)
    for p in plan.passes:
        model = p(model, ctx).model
    return Blob.of(model)


@pytest.mark.slow
def test_minilm_at_cosine_0998_searches_a_mix_from_dynamic_int8_on_every_channel(minilm, tmp_path, keypair):
    """All-INT8 dynamic misses 0.998 on its worst embedding channel; the search ranks all 36 MatMuls (~2 s a try)
    and tries mixes. Whether one meets 0.998 on every one of the 384 channels is this CPU's numerics (none did
    on an AVX2 EPYC: 23 in float left channel 110 at 0.9959); the contract is the decision that follows: a mix
    ships only within the floor on every channel, else float ships and the mix's verdict names what it missed."""
    result = edgeml.compile(str(minilm / "model.onnx"), "cpu-ort", key=keypair[0], out=tmp_path / "m", name="minilm",
                            min_cosine=0.998, cache_dir=tmp_path / "cache")  # fmt: skip
    m = edgeml.verify(tmp_path / "m", keypair[1]).manifest
    d = m["decision"]
    assert "below the 0.998 floor" in d["verdicts"]["int8-dynamic"]
    search = d["mixed_precision"]
    assert len(search["ranking"]) == 36 and search["unranked"] == 0  # every MatMul measured
    if m["precision"] == "int8-mixed":
        fid = m["metrics"]["fidelity"]["sentence_embedding"]
        assert min(fid["cosine"], fid["worst_channel_cosine"]) >= 0.998
        (quantize,) = [p for p in m["provenance"]["passes"] if p["name"] == "quantize-dynamic"]
        assert quantize["config"]["exclude_nodes"] == search["keep_float"]
        assert result.decision.chosen == "int8-mixed"
    else:
        assert m["precision"] == "fp32" and search["keep_float"] is None
        verdict = d["verdicts"]["int8-mixed"]
        assert "no mix" in verdict and "closest:" in verdict and "below the 0.998 floor" in verdict, verdict

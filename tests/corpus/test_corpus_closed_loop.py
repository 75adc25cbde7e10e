"""Every stateful corpus model's state feedback (meta.json `recurrent`) is what `edgeml check` infers from the
model alone: the same input fed back from the same output, with no spec given."""

from __future__ import annotations

import corpus
import pytest

from edgeml.compiler.check_model import check_model

STATEFUL = [name for name, e in corpus.ENTRIES.items() if e.source == "model.onnx" and e.family == "silero"] + [
    "syn_state_axis1"
]


@pytest.mark.parametrize("name", STATEFUL)
def test_check_infers_the_corpus_models_state_feedback(corpus_model, name, tmp_path):
    folder = corpus_model(name)
    declared = {k: s["recurrent"] for k, s in corpus.load_meta(folder).inputs.items() if s.get("recurrent")}
    report = check_model(folder / "model.onnx", "cpu-ort", cache_dir=tmp_path)
    inferred = {i["name"]: i["from_output"] for i in report.inputs if i.get("from_output")}
    assert declared and inferred == declared

"""Pruning PyTorch sources before export: structured channels (torch-pruning) with distillation or a user
hook, unstructured magnitude pruning — on the digits CNNs, through the whole compile."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import onnx
import pytest

import edgeml

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def _compile(tmp_path, keypair, model, name="out", **kwargs):
    kwargs.setdefault("calib", DIGITS / "calib.npz")
    kwargs.setdefault("eval_data", DIGITS / "eval.npz")
    return edgeml.compile(model, "cpu-ort", key=keypair[0], out=tmp_path / name, **kwargs)


def _conv_widths(artifact: Path) -> list[int]:
    model = onnx.load(artifact / "model.onnx")
    inits = {i.name: i for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    return [inits[n.input[1]].dims[0] for n in convs if n.input[1] in inits]


def test_channel_pruning_with_distillation_keeps_accuracy_and_reports_before_after(tmp_path, keypair, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = _compile(
        tmp_path, keypair, "examples.digits.digits_cnn:build_wide", prune="channels:0.3",
        finetune=DIGITS / "train.npz", max_drop=0.5, options={"precision": "fp32"},
    )  # fmt: skip
    p = result.manifest["pruning"]
    assert p["method"] == "channels:0.3:per-layer" and p["channels"]["conv1"] == [48, 33]
    assert p["after"]["macs"] < 0.6 * p["before"]["macs"] and p["after"]["params"] < 0.6 * p["before"]["params"]
    assert p["recovery"]["kind"] == "distillation" and p["recovery"]["labels"] is True
    assert p["recovery"]["loss_after"] < p["recovery"]["loss_before"]
    before, after = p["measured"]["before"], p["measured"]["after"]
    assert before["accuracy"] - after["accuracy"] <= 0.5 and after["latency_p50_ms"] > 0
    assert "of the MACs" in p["note"]
    assert _conv_widths(tmp_path / "out")[0] == 33  # the shipped ONNX is the pruned model
    assert result.manifest["provenance"]["recipe"]["prune"]["spec"] == "channels:0.3:per-layer"
    explain = json.loads((tmp_path / "out" / "explain.json").read_text())
    assert explain["pruning"]["after"]["macs"] == p["after"]["macs"]
    edgeml.verify(tmp_path / "out", keypair[1])


def test_magnitude_pruning_states_its_sparsity_and_that_it_buys_size_not_speed(tmp_path, keypair):
    kwargs = dict(prune="magnitude:0.5", finetune=DIGITS / "train.npz", options={"precision": "fp32"}, no_cache=True)
    result = _compile(tmp_path, keypair, str(DIGITS / "model.pt2"), **kwargs)
    p = result.manifest["pruning"]
    assert p["sparsity"]["weights"] == pytest.approx(0.5, abs=0.01)  # fine-tuning kept the zeros at zero
    assert set(p["sparsity"]["per_layer"]) == {"conv1.weight", "conv2.weight", "conv3.weight", "fc.weight"}
    assert p["compressed_bytes"]["after"] < 0.75 * p["compressed_bytes"]["before"]
    assert "no speedup" in p["note"] and "compressed (zipped)" in p["note"]
    assert p["after"]["nonzero_params"] < 0.6 * p["before"]["nonzero_params"]
    again = _compile(tmp_path, keypair, str(DIGITS / "model.pt2"), name="again", **kwargs)
    assert (tmp_path / "out" / "model.onnx").read_bytes() == (tmp_path / "again" / "model.onnx").read_bytes()
    assert again.manifest["pruning"]["recovery"]["loss_after"] == p["recovery"]["loss_after"]


HOOKS = """
    def broken(model, data, teacher):
        raise RuntimeError("GPU out of memory")

    def keep_as_is(model, data, teacher):
        assert data is not None and data.labels is not None and teacher is not model
        return None
"""


def test_a_failing_finetune_hook_is_reported_and_the_unpruned_model_ships(tmp_path, keypair, monkeypatch):
    monkeypatch.chdir(ROOT)
    (tmp_path / "my_hooks.py").write_text(textwrap.dedent(HOOKS))
    monkeypatch.syspath_prepend(str(tmp_path))
    common = dict(prune="channels:0.5", finetune=DIGITS / "train.npz", options={"precision": "fp32"})
    result = _compile(tmp_path, keypair, "examples.digits.digits_cnn:build", finetune_hook="my_hooks:broken", **common)
    p = result.manifest["pruning"]
    assert p["kept_unpruned"] is True and "raised RuntimeError: GPU out of memory" in p["recovery"]["error"]
    assert any(n.startswith("not pruned: fine-tune hook my_hooks:broken raised") for n in result.notes)
    assert _conv_widths(tmp_path / "out")[0] == 16  # the un-pruned DigitsCNN
    # no training at all: half the channels gone, so only a budget that accepts anything lets it ship
    ok = _compile(tmp_path, keypair, "examples.digits.digits_cnn:build", "ok", finetune_hook="my_hooks:keep_as_is",
                  max_drop=100, min_channel_cosine=-1, **common)  # fmt: skip
    assert ok.manifest["pruning"]["recovery"]["kind"] == "hook" and _conv_widths(tmp_path / "ok")[0] == 8


HEADS = """
    import torch
    from torch import nn

    class Heads(nn.Module):
        # like a transformer's attention: the projection is reshaped into a fixed 2 heads x 8
        def __init__(self):
            super().__init__()
            self.proj, self.out = nn.Linear(64, 16), nn.Linear(16, 10)

        def forward(self, input):
            h = self.proj(input.flatten(1)).view(input.shape[0], 2, 8)
            return self.out(torch.relu(h).flatten(1))

    def build():
        torch.manual_seed(0)
        return Heads().eval(), (torch.zeros(2, 1, 8, 8),)
"""


def test_channel_pruning_that_breaks_the_model_says_why_and_the_unpruned_model_ships(tmp_path, keypair, monkeypatch):
    """torch-pruning narrows a projection the code reshapes into fixed heads (as on all-MiniLM-L6-v2): the
    compile reports it and ships the un-pruned model instead of failing with a raw RuntimeError."""
    (tmp_path / "heads_model.py").write_text(textwrap.dedent(HEADS))
    monkeypatch.syspath_prepend(str(tmp_path))
    result = _compile(tmp_path, keypair, "heads_model:build", prune="channels:0.5", finetune=DIGITS / "train.npz",
                      options={"precision": "fp32"}, max_drop=100, min_channel_cosine=-1)  # fmt: skip
    p = result.manifest["pruning"]
    assert p["kept_unpruned"] is True and "the channel-pruned model no longer runs" in p["recovery"]["error"]
    assert any(n.startswith("not pruned: the channel-pruned model no longer runs") for n in result.notes)
    edgeml.verify(tmp_path / "out", keypair[1])


def test_channel_pruning_to_a_mac_budget_takes_the_smallest_ratio_that_meets_it(tmp_path, keypair, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = _compile(
        tmp_path, keypair, "examples.digits.digits_cnn:build_wide", prune="channels:macs=0.5",
        options={"precision": "fp32"}, max_drop=100.0, min_channel_cosine=-1.0,
    )  # fmt: skip
    p = result.manifest["pruning"]
    share = p["after"]["macs"] / p["before"]["macs"]
    assert p["method"] == "channels:macs=0.5" and 0.45 < share <= 0.5  # met, and not pruned far past it
    budget = p["mac_budget"]
    assert budget["share"] == 0.5 and abs(budget["macs_kept"] - share) < 1e-3 and 0.2 < budget["ratio"] < 0.4
    assert p["note"].startswith(f"MAC budget 50%: {budget['ratio']:.1%} of the channels removed")
    assert result.manifest["provenance"]["recipe"]["prune"]["spec"] == "channels:macs=0.5"


def test_a_mac_budget_out_of_reach_says_what_the_most_pruning_keeps(tmp_path, keypair, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(edgeml.EdgemlError) as info:
        _compile(tmp_path, keypair, "examples.digits.digits_cnn:build", prune="channels:macs=0.001")
    assert "even pruning 90% of the channels keeps" in info.value.message and "macs=0." in info.value.hint
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "problem"),
    [("magnitude:macs=0.5", "takes channel pruning"), ("channels:macs=1.5", "out of range"),
     ("channels:macs=half", "is not macs=NUMBER"), ("channels:macs=0.5:per-layer", "takes channel pruning")],
)  # fmt: skip
def test_a_bad_mac_budget_is_refused_before_any_work(text, problem):
    from edgeml.compiler.pruning.prune_spec import PruneSpec

    with pytest.raises(edgeml.EdgemlError, match=problem):
        PruneSpec.parse(text)
    assert PruneSpec.parse("channels:macs=0.25").macs == 0.25 and str(PruneSpec.parse("channels:macs=0.25")) == (
        "channels:macs=0.25"
    )

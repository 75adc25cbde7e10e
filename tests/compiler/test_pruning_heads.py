"""Head-aware channel pruning of transformers: whole attention heads and feed-forward channels go, the residual
stream keeps its width, the head counts follow — on a small random Hugging Face BertModel, on
nn.TransformerEncoder, through the whole compile, and on all-MiniLM-L6-v2."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import edgeml
from edgeml.compiler.pruning.activation_importance import input_magnitudes
from edgeml.compiler.pruning.prune_channels import PruneChannels, PruneChannelsConfig
from edgeml.runtimes import open_session

ROOT = Path(__file__).resolve().parents[2]

TINY_BERT = """
    import torch
    from transformers import BertConfig, BertModel

    class Encoder(torch.nn.Module):
        # a Hugging Face BertModel as a plain module: token ids + mask -> last hidden state [batch, seq, 64]
        def __init__(self):
            super().__init__()
            config = BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=128, max_position_embeddings=16, initializer_range=0.2,
                                attn_implementation="eager")
            self.bert = BertModel(config, add_pooling_layer=False)

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def build():
        torch.manual_seed(0)
        ids = torch.randint(1, 100, (2, 16))
        return Encoder().eval(), (ids, torch.ones_like(ids))
"""


def _tiny_bert():
    namespace: dict = {}
    exec(textwrap.dedent(TINY_BERT), namespace)
    return namespace["build"]()


def _attention(model):
    return [m for n, m in model.named_modules() if n.endswith("attention.self")]


def _kept_rows(pruned: torch.Tensor, original: torch.Tensor) -> list[int]:
    """Which rows of `original` the pruned weight kept, in order (pruning selects rows, it does not change them)."""
    return [int(torch.cdist(row[None], original).argmin()) for row in pruned]


@pytest.mark.parametrize("ratio,heads", [(0.3, 3), (0.5, 2), (0.9, 1)])
def test_whole_heads_are_removed_and_the_head_counts_follow(ratio, heads):
    model, examples = _tiny_bert()
    pruned, report = PruneChannels(PruneChannelsConfig(ratio=ratio))(model, examples)
    names = [n for n, _ in model.named_modules() if n.endswith("attention.self")]
    assert report["heads"] == {n: [4, heads] for n in names}
    for a in _attention(pruned):
        assert (a.num_attention_heads, a.attention_head_size, a.all_head_size) == (heads, 16, heads * 16)
        assert a.query.out_features == a.key.out_features == a.value.out_features == heads * 16
    assert pruned.bert.embeddings.LayerNorm.normalized_shape == (64,)  # the residual stream keeps its width
    with torch.no_grad():
        assert pruned(*examples).shape == model(*examples).shape == (2, 16, 64)
    assert _attention(model)[0].num_attention_heads == 4  # the input model is not touched


class _Classifier(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder, self.classifier = encoder, torch.nn.Linear(64, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(input_ids, attention_mask)[:, 0])  # from the [CLS] token


def test_the_hidden_size_keeps_its_width_under_a_classifier_head():
    """Here the model's output layer (the classifier) does not pin the residual stream: it keeps its width
    because it feeds the attention modules."""
    encoder, (ids, mask) = _tiny_bert()
    model = _Classifier(encoder).eval()
    pruned, report = PruneChannels(PruneChannelsConfig(ratio=0.5))(model, (ids, mask))
    assert pruned.encoder.bert.embeddings.word_embeddings.embedding_dim == 64 and pruned.classifier.in_features == 64
    assert set(report["channels"]) == {
        f"encoder.bert.encoder.layer.{i}.{layer}" for i in (0, 1)
        for layer in ("attention.self.query", "attention.self.key", "attention.self.value", "intermediate.dense")
    }  # fmt: skip
    with torch.no_grad():
        assert pruned(ids, mask).shape == (2, 3)


@pytest.mark.parametrize("ranked_on_data", [False, True])
def test_the_pruned_bert_computes_what_the_original_computes_without_the_removed_heads_and_channels(ranked_on_data):
    """The same heads are cut from query, key, value and the output projection's inputs, and the same FFN
    channels from both FFN layers: zeroing exactly those heads' values and those channels in the original gives
    the pruned model's output."""
    model, examples = _tiny_bert()
    calibration = [examples] if ranked_on_data else None
    pruned, report = PruneChannels(PruneChannelsConfig(ratio=0.5))(model, examples, calibration, 1)
    assert report["channels"]["bert.encoder.layer.1.intermediate.dense"] == [128, 64]
    masked = copy.deepcopy(model)
    for layer, small in zip(masked.bert.encoder.layer, pruned.bert.encoder.layer, strict=True):
        attention = layer.attention.self
        kept = _kept_rows(small.attention.self.value.weight, attention.value.weight)
        heads = sorted({i // 16 for i in kept})
        assert len(heads) == 2 and kept == [h * 16 + d for h in heads for d in range(16)]  # whole heads, in order
        assert _kept_rows(small.attention.self.query.weight, attention.query.weight) == kept
        assert _kept_rows(small.attention.self.key.weight, attention.key.weight) == kept
        gone = [i for i in range(64) if i not in kept]
        with torch.no_grad():
            attention.value.weight[gone] = 0
            attention.value.bias[gone] = 0
            ffn = _kept_rows(small.intermediate.dense.weight, layer.intermediate.dense.weight)
            assert len(ffn) == 64
            cut = [i for i in range(128) if i not in ffn]
            layer.intermediate.dense.weight[cut] = 0
            layer.intermediate.dense.bias[cut] = 0  # NOTE: GELU(0) = 0: a zeroed channel adds nothing downstream
    with torch.no_grad():
        original, expected, got = model(*examples), masked(*examples), pruned(*examples)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, original, atol=1e-2)  # removing heads did change the output


def test_with_calibration_data_heads_are_ranked_by_what_they_output_not_by_their_weights():
    """Head 0 of each layer gets large q/k/v weights but an output projection that all but ignores it: weight
    magnitude keeps it, its contribution on data (|context| x output column norm) removes it."""
    model, examples = _tiny_bert()
    with torch.no_grad():
        for layer in model.bert.encoder.layer:
            for proj in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value):
                proj.weight[:16] *= 10
            layer.attention.output.dense.weight[:, :16] *= 1e-3
    removed = {}
    for how, calibration in (("weights", None), ("data", [examples])):
        pruned, report = PruneChannels(PruneChannelsConfig(ratio=0.25))(model, examples, calibration, 1)
        value = (
            pruned.bert.encoder.layer[0].attention.self.value.weight,
            model.bert.encoder.layer[0].attention.self.value.weight,
        )
        removed[how] = sorted(set(range(4)) - {i // 16 for i in _kept_rows(*value)})
        assert report["importance"].startswith("activation" if calibration else "weight L1")
    assert removed["weights"] != [0] and removed["data"] == [0]


def test_padding_does_not_count_towards_the_input_magnitudes():
    layer = torch.nn.Linear(2, 2)
    model = torch.nn.Module()
    model.layer = layer
    model.forward = lambda x, mask: layer(x)
    x = torch.tensor([[[1.0, 2.0], [100.0, 100.0]]])  # [batch 1, seq 2, features 2]; the 2nd position is padding
    mask = torch.tensor([[1, 0]])
    assert input_magnitudes(model, [(x, mask)], mask_input=1)[layer].tolist() == [1.0, 2.0]
    assert input_magnitudes(model, [(x, mask)])[layer].tolist() == [50.5, 51.0]


def test_multihead_attention_keeps_its_heads_and_the_feed_forward_layers_are_pruned():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 64), torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    ).eval()
    examples = (torch.randn(2, 10, 8),)
    pruned, report = PruneChannels(PruneChannelsConfig(ratio=0.3))(model, examples)
    assert report["channels"] == {"1.layers.0.linear1": [128, 89], "1.layers.1.linear1": [128, 89]}
    assert set(report["heads_kept"]) == {"1.layers.0.self_attn", "1.layers.1.self_attn"} and report["heads"] == {}
    assert all(m.embed_dim == 64 and m.num_heads == 4 for m in pruned.modules() if hasattr(m, "embed_dim"))
    with torch.no_grad():
        assert pruned(*examples).shape == (2, 10, 64)


def test_compile_prunes_a_bert_by_heads_distils_it_and_ships_the_smaller_model(tmp_path, keypair, monkeypatch):
    (tmp_path / "tiny_bert.py").write_text(textwrap.dedent(TINY_BERT))
    monkeypatch.syspath_prepend(str(tmp_path))
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 100, (64, 16)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[::2, 12:] = 0  # padded samples: the attention mask must still apply after pruning
    np.savez(tmp_path / "data.npz", input_ids=ids, attention_mask=mask)
    result = edgeml.compile(
        "tiny_bert:build", "cpu-ort", key=keypair[0], out=tmp_path / "out", calib=tmp_path / "data.npz",
        eval_data=tmp_path / "data.npz", prune="channels:0.5", finetune=tmp_path / "data.npz", finetune_epochs=2,
        options={"precision": "fp32"}, min_cosine=0.0, min_channel_cosine=-1.0,
    )  # fmt: skip
    p = result.manifest["pruning"]
    assert "kept_unpruned" not in p and p["heads"] == {f"bert.encoder.layer.{i}.attention.self": [4, 2] for i in (0, 1)}
    assert p["note"].startswith("2 of 4 heads removed in each of 2 attention layers (head size kept; heads and "
                                "channels ranked by their output on the calibration data)")  # fmt: skip
    assert p["importance"].startswith("activation")
    assert p["after"]["params"] < p["before"]["params"] and p["after"]["macs"] < p["before"]["macs"]
    assert p["recovery"]["kind"] == "distillation" and p["recovery"]["learning_rate"] == 3e-4
    graph = onnx.load(tmp_path / "out" / "model.onnx").graph
    widths = sorted({tuple(i.dims) for i in graph.initializer if len(i.dims) == 2})
    assert (64, 32) in widths or (32, 64) in widths  # q/k/v: 64 -> 2 heads x 16
    session = open_session("onnxruntime", tmp_path / "out" / "model.onnx")
    (out,) = session.run({"input_ids": ids[:3], "attention_mask": mask[:3]}).values()
    assert out.shape == (3, 16, 64)
    edgeml.verify(tmp_path / "out", keypair[1])


@pytest.mark.slow
def test_minilm_channel_pruning_ships_a_smaller_faster_model_that_runs(minilm, tmp_path, keypair, monkeypatch):
    monkeypatch.chdir(ROOT)  # the factory examples.minilm.minilm:build is imported from the repository
    result = edgeml.compile(
        "examples.minilm.minilm:build", "cpu-ort", key=keypair[0], out=tmp_path / "m", name="minilm",
        calib=minilm / "calib.npz", eval_data=minilm / "eval.npz", prune="channels:0.3",
        options={"precision": "fp32"}, min_cosine=0.0, min_channel_cosine=-1.0,
    )  # fmt: skip
    p = result.manifest["pruning"]
    assert "kept_unpruned" not in p and set(map(tuple, p["heads"].values())) == {(12, 8)} and len(p["heads"]) == 6
    assert p["channels"]["encoder.encoder.layer.0.intermediate.dense"] == [1536, 1075]
    assert p["after"]["macs"] < 0.75 * p["before"]["macs"]
    feeds = {k: v[:2] for k, v in np.load(minilm / "eval.npz").items()}
    (out,) = open_session("onnxruntime", tmp_path / "m" / "model.onnx").run(feeds).values()
    assert out.shape == (2, 384) and np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-3)

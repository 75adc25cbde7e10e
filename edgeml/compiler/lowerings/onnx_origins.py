"""OpenVINO op names → the ONNX node each op was converted from: how a layer named by its ONNX node (what
edgeml's reports and cpu-ort's `exclude_nodes` use) is found in an OpenVINO model, and back.

OpenVINO's ONNX frontend names the ops it makes after the ONNX node (`node_conv2d`), with a suffix for the
pieces it splits a node into (`node_conv2d/WithoutBiases` for the Convolution of a Conv with bias), or after
the tensor a node produces (the bias Add of the Gemm whose output is `logits` is named `logits`). NNCF adds
its own suffixes (`node_relu/fq_output_0`). So an op's origin is the longest ONNX node name that is the op's
name or a `/`-prefix of it, else the node producing the longest such tensor name. An op with neither keeps
its own name.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OnnxOrigins"]


class OnnxOrigins:
    def __init__(self, proto: Any) -> None:
        """`proto`: the ONNX ModelProto the OpenVINO model was converted from."""
        self.ops = {n.name: n.op_type for n in proto.graph.node if n.name}
        self.outputs = {n.name: n.output[0] for n in proto.graph.node if n.name and n.output}
        self._producers = {out: n.name for n in proto.graph.node if n.name for out in n.output if out}

    def of(self, ov_name: str) -> str:
        """The ONNX node `ov_name` comes from; `ov_name` itself where none can be told."""
        for prefix in _prefixes(ov_name):
            if prefix in self.ops:
                return prefix
            if prefix in self._producers:
                return self._producers[prefix]
        return ov_name

    def op_type(self, origin: str, fallback: str) -> str:
        """The ONNX op type of an origin (e.g. Gemm for the MatMul OpenVINO made of it), else `fallback`."""
        return self.ops.get(origin, fallback)


def _prefixes(name: str) -> list[str]:
    """`a/b/c` → [`a/b/c`, `a/b`, `a`]: longest first."""
    cuts = [i for i, ch in enumerate(name) if ch == "/" and i > 0]
    return [name, *(name[:i] for i in reversed(cuts))]

"""ONNX → ONNX with intermediate tensor shapes and types recorded (quantizers need them)."""

from __future__ import annotations

from edgeml.compiler.passes.base import Pass, PassContext, PassResult

__all__ = ["InferShapes"]


class InferShapes(Pass):
    name = "infer-shapes"

    def apply(self, model: bytes, ctx: PassContext) -> PassResult:
        import onnx

        inferred = onnx.shape_inference.infer_shapes(onnx.load_model_from_string(model))
        data = inferred.SerializeToString()
        return PassResult(data, changed=data != model)

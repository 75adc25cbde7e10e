"""ONNX opset < `min_opset` → the same graph converted to `min_opset` with onnx.version_converter."""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.compiler.passes.base import Pass, PassConfig, PassContext, PassResult, option
from edgeml.errors import ModelIntakeError

__all__ = ["UpgradeOpset", "UpgradeOpsetConfig", "default_opset"]


@dataclass(frozen=True)
class UpgradeOpsetConfig(PassConfig):
    min_opset: int = option(13, "lowest default-domain opset kept; older models are converted up to it")


def default_opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


class UpgradeOpset(Pass):
    name = "upgrade-opset"
    Config = UpgradeOpsetConfig

    def apply(self, model: bytes, ctx: PassContext) -> PassResult:
        import onnx
        from onnx import version_converter

        proto = onnx.load_model_from_string(model)
        current = default_opset(proto)
        if current >= self.config.min_opset:
            return PassResult(model, changed=False)
        try:
            converted = version_converter.convert_version(proto, self.config.min_opset)
        except Exception as exc:  # the converter raises bare RuntimeErrors/ValueErrors per op
            raise ModelIntakeError(
                f"cannot convert the model from opset {current} to {self.config.min_opset}: {exc}",
                "re-export the model with a newer opset (e.g. torch.onnx.export(..., opset_version=17))",
            ) from exc
        note = f"opset {current} → {self.config.min_opset} (per-channel QDQ needs ≥ 13)"
        return PassResult(converted.SerializeToString(), changed=True, notes=(note,))

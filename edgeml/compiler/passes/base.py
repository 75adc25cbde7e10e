"""The pass contract: ONNX bytes in, new ONNX bytes out, with a typed frozen config.

A pass subclasses `Pass`, declares `name`, its `Config` dataclass (every field with a default and a
`help` in its metadata: CLI options, recipe validation and docs come from there), the tools whose
versions change its output, and implements `apply`. The base checks what `apply` returns, so a broken
pass fails loudly at its own name instead of three passes later.
"""

from __future__ import annotations

import dataclasses
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from edgeml.calibration.dataset import Dataset
from edgeml.errors import PassContractError
from edgeml.option import option  # NOTE: re-exported: a pass author's config fields are made with it
from edgeml.signature import ModelSignature

__all__ = ["Pass", "PassConfig", "PassContext", "PassResult", "option"]


@dataclass(frozen=True)
class PassConfig:
    """Base of every pass config: frozen, typed, each field made with `option()`."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PassContext:
    """What a pass or lowering may read besides the model: the signature, calibration data, a scratch
    folder, and the original source (a lowering that converts from PyTorch, e.g. to TFLite, needs it)."""

    signature: ModelSignature
    calibration: Dataset | None = None
    scratch: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    source: Any = None  # edgeml.compiler.intake.ModelSource: kind "onnx" | "pt2" | "torchscript" | "factory"


@dataclass(frozen=True)
class PassResult:
    model: bytes
    changed: bool
    notes: tuple[str, ...] = ()


class Pass(ABC):
    name: ClassVar[str]
    Config: ClassVar[type[PassConfig]] = PassConfig
    uses_calibration: ClassVar[bool] = False
    tools: ClassVar[tuple[str, ...]] = ("onnx",)
    # (description, predicate over the output ModelProto) checked after every run
    postconditions: ClassVar[tuple[tuple[str, Callable[[Any], bool]], ...]] = ()

    def __init__(self, config: PassConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise PassContractError(f"{self.name} takes a {self.Config.__name__}, got {type(self.config).__name__}")

    def __call__(self, model: bytes, ctx: PassContext) -> PassResult:
        result = self.apply(model, ctx)
        self._check(model, result)
        return result

    @abstractmethod
    def apply(self, model: bytes, ctx: PassContext) -> PassResult:
        """Return a new model; never modify `model`."""

    def _check(self, before: bytes, result: Any) -> None:
        import onnx

        if not isinstance(result, PassResult) or not isinstance(result.model, bytes) or not result.model:
            raise PassContractError(f"pass {self.name} returned {type(result).__name__}, not a PassResult with bytes")
        if not result.changed and result.model != before:
            raise PassContractError(f"pass {self.name} said unchanged but returned different bytes; set changed=True")
        proto = onnx.load_model_from_string(result.model)
        for description, holds in self.postconditions:
            if not holds(proto):
                raise PassContractError(f"pass {self.name} broke its postcondition: {description}")

"""The lowering contract: ONNX bytes in, the files a target's runtime loads out.

Passes keep the model in ONNX; a lowering is the one step that leaves it (OpenVINO IR, a TFLite flatbuffer,
a Vela-compiled model with its report). A candidate whose runtime loads ONNX needs no lowering. Like a pass,
a lowering has a typed frozen config and declares the tools whose versions change its output; the base
checks what `apply` returns.
"""

from __future__ import annotations

import io
import zipfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from edgeml.compiler.passes.base import PassConfig, PassContext
from edgeml.errors import PassContractError

__all__ = ["Lowered", "Lowering", "bundle", "unbundle"]

_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Lowered:
    files: dict[str, bytes]  # artifact-relative path → bytes
    model_file: str  # the file the runtime opens (on this host: measured, evaluated, self-tested)
    runtime: str  # id in edgeml.runtimes.RUNTIMES
    notes: tuple[str, ...] = ()
    device_model_file: str | None = None  # what the device runs, when the host cannot (e.g. Vela's output)
    layers: tuple[dict[str, Any], ...] = ()  # per-layer numerics the lowering measured (LayerNumerics rows)
    device: dict[str, Any] | None = None  # the target toolchain's account of the device model (Vela: NPU share,
    # fallback, time estimate); its "summary" sentence joins the verdict and it goes into the manifest


class Lowering(ABC):
    name: ClassVar[str]
    Config: ClassVar[type[PassConfig]] = PassConfig
    uses_calibration: ClassVar[bool] = False
    tools: ClassVar[tuple[str, ...]] = ("onnx",)

    def __init__(self, config: PassConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise PassContractError(f"{self.name} takes a {self.Config.__name__}, got {type(self.config).__name__}")

    def __call__(self, model: bytes, ctx: PassContext) -> Lowered:
        result = self.apply(model, ctx)
        if not isinstance(result, Lowered) or not result.files:
            raise PassContractError(f"lowering {self.name} returned {type(result).__name__}, not a Lowered with files")
        for name in (result.model_file, result.device_model_file):
            if name is not None and name not in result.files:
                raise PassContractError(f"lowering {self.name}: {name!r} is not among its files")
        bad = [p for p, d in result.files.items() if not isinstance(d, bytes) or p.startswith("/") or ".." in p]
        if bad:
            raise PassContractError(f"lowering {self.name}: files {bad} are not relative paths with bytes")
        return result

    @abstractmethod
    def apply(self, model: bytes, ctx: PassContext) -> Lowered:
        """Return the target's files for `model`; never modify `model`."""


def bundle(files: dict[str, bytes]) -> bytes:
    """Files → one deterministic zip (sorted names, fixed times): how a lowering's output is cached."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(files):
            zf.writestr(zipfile.ZipInfo(name, date_time=_EPOCH), files[name])
    return buf.getvalue()


def unbundle(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}

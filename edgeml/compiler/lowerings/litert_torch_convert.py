"""An exported FX graph (float, or PT2E-quantized with its quantizer) → TFLite flatbuffer bytes, via litert-torch.

litert-torch prints a progress tree and the converter's C++ info lines to the console; edgeml reports progress
itself, so both are silenced here. The flatbuffer is written to a temporary file under `scratch` (litert-torch
only exports to a path) and read back.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeml.compiler.optional_dependency import import_optional

__all__ = ["import_litert_torch", "litert_torch_convert"]


def import_litert_torch(needed_for: str) -> Any:
    """litert-torch, or an error naming the extra to install; its C++ info lines silenced before it loads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)  # torch-internal deprecation
    return import_optional("litert_torch", "litert", needed_for)


def litert_torch_convert(
    graph: Any, sample: dict[str, Any], scratch: Path, needed_for: str, quantizer: Any = None
) -> bytes:
    """`quantizer`: the PT2E quantizer `graph` was prepared and converted with (None for a float graph)."""
    litert_torch = import_litert_torch(needed_for)
    graph.training = False  # NOTE: an exported module refuses .eval(); litert-torch only reads this flag
    kwargs = {}
    if quantizer is not None:
        from litert_torch.quantize.quant_config import QuantConfig

        kwargs["quant_config"] = QuantConfig(pt2e_quantizer=quantizer)
    with _quiet_litert_torch():
        edge = litert_torch.convert(graph, sample_kwargs=sample, **kwargs)
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder, _quiet_litert_torch():
        path = Path(folder) / "model.tflite"
        edge.export(str(path))
        return path.read_bytes()


@contextlib.contextmanager
def _quiet_litert_torch() -> Iterator[None]:
    before = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = before

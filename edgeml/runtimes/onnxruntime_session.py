"""ONNX model file → an ONNX Runtime inference session behind the Session interface."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import onnxruntime as ort

from edgeml.errors import RuntimeUnavailableError
from edgeml.signature import ModelSignature, TensorSpec

__all__ = ["OrtSession"]

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


class OrtSession:
    runtime = "onnxruntime"

    def __init__(
        self, model_path: str | os.PathLike[str], threads: int = 1, providers: Sequence[str] | None = None
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        available = ort.get_available_providers()
        wanted = list(providers or ["CPUExecutionProvider"])
        missing = [p for p in wanted if p not in available]
        if missing:
            raise RuntimeUnavailableError(
                f"ONNX Runtime here lacks execution provider(s) {', '.join(missing)} (has {', '.join(available)})",
                "install the onnxruntime build that carries them (e.g. onnxruntime-gpu)",
            )
        self._session = ort.InferenceSession(os.fspath(model_path), options, providers=wanted)
        self.providers = tuple(self._session.get_providers())
        self.signature = ModelSignature(
            tuple(_spec(a) for a in self._session.get_inputs()),
            tuple(_spec(a) for a in self._session.get_outputs()),
        )
        self._output_names = list(self.signature.output_names)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self._output_names, self._session.run(self._output_names, feeds), strict=False))


def _spec(arg: ort.NodeArg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or "?") for d in arg.shape)
    return TensorSpec(arg.name, _ORT_TYPES.get(arg.type, arg.type), shape)

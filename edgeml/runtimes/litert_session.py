"""TFLite model file → a LiteRT interpreter behind the Session interface, float32 in and out.

Full-INT8 models (litert-torch PT2E, ai-edge-quantizer) take and return int8 tensors. The adapter quantizes
each float feed with the input tensor's own scale and zero-point and dequantizes each int8 output the same
way, so callers (the compiler's measurements, the self-test, the host application) see the float signature
of the source model. A static batch-1 model given N samples runs N single-sample invocations: that is how
a static-shape device runs it too. Names come from the model's signature (litert-torch writes the source
model's input and output names there).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from edgeml.errors import RuntimeUnavailableError
from edgeml.signature import ModelSignature, TensorSpec

__all__ = ["LiteRTSession"]

_QUANTIZED = (np.int8, np.uint8, np.int16)


class LiteRTSession:
    runtime = "litert"

    def __init__(
        self, model_path: str | os.PathLike[str], threads: int = 1, providers: Sequence[str] | None = None
    ) -> None:
        if providers:
            raise RuntimeUnavailableError(
                f"LiteRT here runs on the CPU only; execution providers {', '.join(providers)} are not available",
                "drop the providers argument, or use a runtime that has them",
            )
        self._interpreter = Interpreter(model_path=os.fspath(model_path), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._inputs, self._outputs = _io_details(self._interpreter)
        self.signature = ModelSignature(
            tuple(_spec(name, d) for name, d in self._inputs.items()),
            tuple(_spec(name, d) for name, d in self._outputs.items()),
        )
        self.io_quantization = {
            name: _quant_params(d) for name, d in (self._inputs | self._outputs).items() if _is_quantized(d)
        }

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self._inputs if n not in feeds]
        if missing:
            raise ValueError(f"missing input(s) {', '.join(missing)}; the model takes {', '.join(self._inputs)}")
        count = _samples(feeds, self._inputs)
        if count is None:
            return self._invoke(feeds)
        parts = [self._invoke({n: feeds[n][i : i + 1] for n in self._inputs}) for i in range(count)]
        return {name: np.concatenate([p[name] for p in parts]) for name in self._outputs}

    def _invoke(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, detail in self._inputs.items():
            self._interpreter.set_tensor(detail["index"], _to_model(np.asarray(feeds[name]), detail))
        self._interpreter.invoke()
        return {name: _from_model(self._interpreter.get_tensor(d["index"]), d) for name, d in self._outputs.items()}


def _io_details(interpreter: Interpreter) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Name → tensor details, named by the first signature where the model has one, else by tensor name."""
    signatures = interpreter.get_signature_list()
    if signatures:
        runner = interpreter.get_signature_runner(next(iter(signatures)))
        return dict(runner.get_input_details()), dict(runner.get_output_details())
    return (
        {d["name"]: d for d in interpreter.get_input_details()},
        {d["name"]: d for d in interpreter.get_output_details()},
    )


def _is_quantized(detail: dict[str, Any]) -> bool:
    return detail["dtype"] in _QUANTIZED and bool(len(detail["quantization_parameters"]["scales"]))


def _quant_params(detail: dict[str, Any]) -> dict[str, Any]:
    scale, zero_point = detail["quantization"]
    return {"dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero_point)}


def _spec(name: str, detail: dict[str, Any]) -> TensorSpec:
    dims = detail.get("shape_signature", detail["shape"])
    shape = tuple("batch" if i == 0 and d < 0 else (int(d) if d >= 0 else f"{name}_dim{i}") for i, d in enumerate(dims))
    dtype = "float32" if _is_quantized(detail) else np.dtype(detail["dtype"]).name
    return TensorSpec(name, dtype, shape)


def _samples(feeds: Mapping[str, np.ndarray], inputs: Mapping[str, dict[str, Any]]) -> int | None:
    """N when a static batch-1 model is fed N > 1 samples (run one by one), else None (run as given)."""
    counts = set()
    for name, detail in inputs.items():
        fixed = detail.get("shape_signature", detail["shape"])
        given = np.shape(feeds[name])
        if len(fixed) and fixed[0] == 1 and len(given) == len(fixed) and given[0] != 1:
            counts.add(given[0])
    return counts.pop() if len(counts) == 1 else None


def _to_model(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if not _is_quantized(detail):
        return x.astype(detail["dtype"], copy=False)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    q = np.round(x.astype(np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(detail["dtype"])


def _from_model(q: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if not _is_quantized(detail):
        return q.copy()
    scale, zero_point = detail["quantization"]
    return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)

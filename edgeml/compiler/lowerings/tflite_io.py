"""TFLite bytes → its signature's input/output tensors: name, dtype, shape and int8 scale/zero-point.

This is what a caller must know to feed an int8-I/O model directly (firmware does): recorded in the
lowering's notes (→ manifest provenance) and in Ethos-U's vela_report.json.
"""

from __future__ import annotations

from typing import Any

__all__ = ["describe_io", "io_tensors"]


def io_tensors(model: bytes) -> dict[str, list[dict[str, Any]]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    signatures = interpreter.get_signature_list()
    if signatures:
        runner = interpreter.get_signature_runner(next(iter(signatures)))
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
    else:
        inputs = {d["name"]: d for d in interpreter.get_input_details()}
        outputs = {d["name"]: d for d in interpreter.get_output_details()}
    return {
        "inputs": [_tensor(n, d) for n, d in inputs.items()],
        "outputs": [_tensor(n, d) for n, d in outputs.items()],
    }


def describe_io(model: bytes) -> str:
    tensors = io_tensors(model)
    parts = [
        f"{t['name']} {t['dtype']}{t['shape']}"
        + (f" scale={t['scale']:.6g} zero_point={t['zero_point']}" if "scale" in t else "")
        for t in tensors["inputs"] + tensors["outputs"]
    ]
    return "TFLite I/O: " + "; ".join(parts)


def _tensor(name: str, detail: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {
        "name": name,
        "dtype": np.dtype(detail["dtype"]).name,
        "shape": [int(d) for d in detail["shape"]],
    }
    scales = detail["quantization_parameters"]["scales"]
    if len(scales):
        scale, zero_point = detail["quantization"]
        out |= {"scale": float(scale), "zero_point": int(zero_point)}
    return out

"""TFLite bytes → its operators in execution order: builtin name (or custom code), output names, dtypes, shapes.

Read with the flatbuffer classes that ship with Vela (no interpreter needed, so it also reads Vela's output,
whose `ethos-u` custom operators no host interpreter can load). What is left as a builtin operator in a
Vela-compiled model is what runs on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TfliteOperator", "tflite_operators"]


@dataclass(frozen=True)
class TfliteOperator:
    type: str  # builtin operator name (CONV_2D, …) or the custom code (ethos-u)
    outputs: tuple[str, ...]
    output_dtypes: tuple[str, ...]  # INT8, FLOAT32, …
    output_shapes: tuple[tuple[int, ...], ...] = ()
    input_shapes: tuple[tuple[int, ...], ...] = ()  # () for an absent optional input
    input_dtypes: tuple[str, ...] = ()


def tflite_operators(model: bytes) -> list[TfliteOperator]:
    from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
    from ethosu.vela.tflite.Model import Model
    from ethosu.vela.tflite.TensorType import TensorType

    builtin = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    dtype = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}
    root = Model.GetRootAsModel(model, 0)
    ops = []
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = root.OperatorCodes(op.OpcodeIndex())
            custom = code.CustomCode()
            kind = custom.decode() if custom else builtin[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            outs = [graph.Tensors(int(t)) for t in op.OutputsAsNumpy() if t >= 0] if op.OutputsLength() else []
            ins = [graph.Tensors(int(t)) if t >= 0 else None for t in op.InputsAsNumpy()] if op.InputsLength() else []
            ops.append(
                TfliteOperator(
                    kind,
                    tuple(t.Name().decode() for t in outs),
                    tuple(dtype[t.Type()] for t in outs),
                    tuple(_shape(t) for t in outs),
                    tuple(_shape(t) if t is not None else () for t in ins),
                    tuple(dtype[t.Type()] if t is not None else "" for t in ins),
                )
            )
    return ops


def _shape(tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

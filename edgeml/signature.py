"""A model's input/output signature: names, dtypes, shapes with named dynamic dims.

It travels from model intake into the manifest (`io`), and from there to `edgeml bench` and the device
agent, which check the feeds they are given against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ModelSignature", "TensorSpec"]

Dim = int | str  # an int is a fixed size; a str names a dynamic dimension ("batch", "seq")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: "float32", "int64", ...
    shape: tuple[Dim, ...]

    @property
    def dynamic_dims(self) -> tuple[str, ...]:
        return tuple(d for d in self.shape if isinstance(d, str))

    @property
    def batch_is_dynamic(self) -> bool:
        return bool(self.shape) and isinstance(self.shape[0], str)

    def fits(self, shape: tuple[int, ...]) -> bool:
        """True when a concrete `shape` matches: same rank, and equal wherever this spec is fixed."""
        if len(shape) != len(self.shape):
            return False
        return all(isinstance(d, str) or d == s for d, s in zip(self.shape, shape, strict=False))

    def describe(self) -> str:
        return f"{self.name}: {self.dtype}[{', '.join(str(d) for d in self.shape)}]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        return cls(d["name"], d["dtype"], tuple(d["shape"]))


@dataclass(frozen=True)
class ModelSignature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSignature:
        return cls(
            tuple(TensorSpec.from_dict(t) for t in d["inputs"]),
            tuple(TensorSpec.from_dict(t) for t in d["outputs"]),
        )

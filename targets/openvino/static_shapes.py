"""A `shape` option + the model's inputs → the static shape of every input, and one issue per input left dynamic.

The option reads `input:1x1x8x8`, several joined by commas (`input_ids:1x32,attention_mask:1x32`). An input
it does not name keeps the model's shape, which must then be static already. Targets that compile static
graphs only (NPUs) use this in their check and in their plan, so both apply the same rule.
"""

from __future__ import annotations

from edgeml.compiler.lowerings.openvino_ir import StaticShapes
from edgeml.errors import TargetError
from edgeml.signature import ModelSignature, TensorSpec
from edgeml.targets.check_report import CheckIssue

__all__ = ["StaticShapes", "example_shape_option", "parse_shape_option", "static_shapes"]


def parse_shape_option(text: str, target_id: str) -> dict[str, tuple[int, ...]]:
    """`a:1x3x224x224,b:1x32` → {"a": (1, 3, 224, 224), "b": (1, 32)}; a malformed entry is refused."""
    shapes: dict[str, tuple[int, ...]] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, dims = entry.rpartition(":")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or min(shape) < 1:
            raise TargetError(
                f"target {target_id} option shape: {entry!r} is not input:DIMxDIM… with positive sizes",
                "e.g. -O shape=input:1x1x8x8 (several inputs: -O shape=input_ids:1x32,attention_mask:1x32)",
            )
        shapes[name] = shape
    return shapes


def static_shapes(signature: ModelSignature, option: str, target_id: str) -> tuple[StaticShapes, list[CheckIssue]]:
    """The (input, shape) pairs to fix, and an issue per input naming each dim that neither the model nor the
    option fixes. An option naming an unknown input, or contradicting a fixed dim, is refused outright."""
    given = parse_shape_option(option, target_id)
    unknown = sorted(set(given) - set(signature.input_names))
    if unknown:
        raise TargetError(
            f"target {target_id} option shape names input(s) {', '.join(unknown)} that the model does not have",
            f"its inputs: {', '.join(t.describe() for t in signature.inputs)}",
        )
    fixed: list[tuple[str, tuple[int, ...]]] = []
    issues: list[CheckIssue] = []
    for spec in signature.inputs:
        if spec.name in given:
            _check_fits(spec, given[spec.name], target_id)
            fixed.append((spec.name, given[spec.name]))
        else:
            issues += _dynamic_dim_issues(spec, signature)
    return tuple(fixed), issues


def _check_fits(spec: TensorSpec, shape: tuple[int, ...], target_id: str) -> None:
    if not spec.fits(shape):
        raise TargetError(
            f"target {target_id} option shape {spec.name}:{'x'.join(map(str, shape))} does not fit {spec.describe()}",
            "give one size per dim, equal to the model's wherever the model fixes it",
        )


def _dynamic_dim_issues(spec: TensorSpec, signature: ModelSignature) -> list[CheckIssue]:
    dims = [f"{axis} ({dim!r})" for axis, dim in enumerate(spec.shape) if isinstance(dim, str)]
    if not dims:
        return []
    fix = f"-O shape={example_shape_option(signature)}"
    detail = (
        f"input {spec.name!r} has dynamic dim{'s' * (len(dims) > 1)} {', '.join(dims)}; this target compiles "
        f"static shapes only: fix them with {fix} (`edgeml compile` without it takes them from the calibration data)"
    )
    return [CheckIssue(spec.name, "input", "static-shapes", detail, fix)]


def example_shape_option(signature: ModelSignature) -> str:
    """`input:1x1x8x8`: 1 for a dynamic batch dim, the dim's name in capitals for any other dynamic dim."""

    def size(axis: int, dim: int | str) -> str:
        return str(dim) if isinstance(dim, int) else "1" if axis == 0 else dim.upper()

    return ",".join(f"{t.name}:{'x'.join(size(a, d) for a, d in enumerate(t.shape))}" for t in signature.inputs)

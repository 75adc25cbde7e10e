"""Data arrays in the model's layout + per-input specs → where each input's samples lie, and its constants.

Every array holds its input in the model's layout, with the samples along the input's batch axis: an image
input `[batch, 3, 224, 224]` is stored `[N, 3, 224, 224]`, a recurrent state `[2, batch, 128]` is stored
`[2, N, 128]`. Two kinds of input have no batch axis:

- a constant, one value fed with every sample (a sample rate): a spec `{constant: 16000}`, or an array of
  exactly the model's rank (a rank-0 `sr` stored as `numpy.int64(16000)`);
- an input fed one sample at a time (`{batch_axis: none}`): its array gets one more, leading axis counting
  the samples, and each sample is fed as it is.

What is not said is inferred, and the result says for each input how it was decided (`edgeml check`
prints it). A spec comes from the recipe (`[inputs] state = {batch_axis = 1}`), `--input state:batch_axis=1`,
or the `.npz` itself (an `edgeml_inputs` entry holding the same JSON); the recipe and flags win.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeml.errors import CalibrationError
from edgeml.signature import ModelSignature, TensorSpec

__all__ = [
    "SPEC_KEY",
    "InputLayout",
    "InputSpec",
    "arrange_inputs",
    "layouts_without_data",
    "parse_input_flags",
    "parse_input_specs",
]

SPEC_KEY = "edgeml_inputs"  # the .npz entry holding per-input specs as JSON
_KEYS = {"batch_axis", "constant", "from_output", "initial"}
_NONE = ("none", "null", "")


@dataclass(frozen=True)
class InputSpec:
    """What the user said about one input: its batch axis (None: it has none), or a constant value."""

    batch_axis: int | None = 0
    constant: Any = None  # a number or nested list; None: not a constant
    given: frozenset[str] = frozenset()  # which keys were given (the rest are inferred)
    from_output: str | None = None  # closed-loop: fed from this output of the previous step ("": never)
    initial: str = "zeros"  # a sequence's first state: "zeros", or "data" (the stored sample)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "batch_axis" in self.given:
            out["batch_axis"] = self.batch_axis
        if self.constant is not None:
            out["constant"] = self.constant
        if "from_output" in self.given:
            out["from_output"] = self.from_output
        if "initial" in self.given:
            out["initial"] = self.initial
        return out


@dataclass(frozen=True)
class InputLayout:
    """How one input is fed: its batch axis in the model's layout (None: none), or a constant value."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]  # the model's
    batch_axis: int | None
    constant: np.ndarray | None
    how: str  # "given", "inferred: …", said by `edgeml check`
    awaits_constant: bool = False  # a scalar with no data yet: its value will come from the data or a spec
    fed_back: str = ""  # closed loop: "fed back from output 'stateN', … (how)" (see recurrence.Recurrence)
    from_output: str | None = None

    @property
    def kind(self) -> str:
        if self.constant is not None or self.awaits_constant:
            return "constant"
        return "batched" if self.batch_axis is not None else "one sample per run"

    def to_dict(self) -> dict[str, Any]:
        dynamic = [i for i, d in enumerate(self.shape) if isinstance(d, str)]
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "kind": self.kind,
            "batch_axis": self.batch_axis if self.constant is None else None,
            "dynamic_axes": dynamic,
            "constant": None if self.constant is None else self.constant.tolist(),
            "how": self.how,
            "from_output": self.from_output,
            "fed_back": self.fed_back,
        }

    def describe(self) -> str:
        shape = f"{self.dtype}[{', '.join(str(d) for d in self.shape)}]"
        if self.kind == "constant":
            value = "from the data" if self.constant is None else self.constant.tolist()
            return f"{self.name}: {shape}, constant {value} ({self.how})"
        batch = "no batch axis, one sample per run" if self.batch_axis is None else f"batch axis {self.batch_axis}"
        dynamic = [str(i) for i, d in enumerate(self.shape) if isinstance(d, str) and i != self.batch_axis]
        more = f", dynamic axes {', '.join(dynamic)}" if dynamic else ""
        fed = f"; {self.fed_back}" if self.fed_back else ""
        return f"{self.name}: {shape}, {batch}{more} ({self.how}){fed}"


def parse_input_specs(raw: Any, where: str) -> dict[str, InputSpec]:
    """{name: {batch_axis: 1}, name: {constant: 16000}} (from a recipe, flags or an .npz) → checked specs."""
    if raw is None:
        return {}
    if isinstance(raw, (str, bytes, np.ndarray)):
        try:
            raw = json.loads(str(raw.item() if isinstance(raw, np.ndarray) else raw))
        except (ValueError, AttributeError) as exc:
            raise CalibrationError(f"{where}: input specs are not JSON ({exc})", _EXAMPLE) from None
    if not isinstance(raw, Mapping):
        raise CalibrationError(f"{where}: input specs must map input names to tables", _EXAMPLE)
    return {str(name): _one_spec(name, value, where) for name, value in raw.items()}


def parse_input_flags(flags: tuple[str, ...] | list[str]) -> dict[str, dict[str, Any]]:
    """`--input state:batch_axis=1 --input sr:constant=16000` → {"state": {"batch_axis": 1}, ...}."""
    out: dict[str, dict[str, Any]] = {}
    for flag in flags:
        name, _, setting = flag.partition(":")
        key, eq, value = setting.partition("=")
        if not name or not eq or key not in _KEYS:
            raise CalibrationError(
                f"--input {flag!r} is not NAME:batch_axis=N, NAME:constant=VALUE, NAME:from_output=OUTPUT or "
                "NAME:initial=zeros|data",
                _EXAMPLE,
            )
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        out.setdefault(name, {})[key] = parsed
    return out


_EXAMPLE = (
    'e.g. recipe `[inputs]` with `state = {batch_axis = 1, from_output = "stateN"}` and '
    "`sr = {constant = 16000}`, or --input state:batch_axis=1 --input state:from_output=stateN "
    "--input sr:constant=16000"
)


def _one_spec(name: Any, value: Any, where: str) -> InputSpec:
    if not isinstance(value, Mapping) or not value or set(value) - _KEYS:
        raise CalibrationError(
            f"{where}: input {name!r} takes batch_axis and/or constant (a state also from_output, initial), "
            f"got {value!r}",
            _EXAMPLE,
        )
    axis = value.get("batch_axis", 0)
    if isinstance(axis, str) and axis.strip().lower() in _NONE:
        axis = None
    if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int) or axis < 0):
        raise CalibrationError(
            f"{where}: input {name!r} batch_axis {axis!r} is not an axis number or none", "e.g. batch_axis = 1"
        )
    constant = value.get("constant")
    if constant is not None and not isinstance(constant, (int, float, list)):
        raise CalibrationError(f"{where}: input {name!r} constant {constant!r} is not a number or a list")
    source = value.get("from_output")
    if source is not None and not isinstance(source, str):
        raise CalibrationError(
            f"{where}: input {name!r} from_output {source!r} is not an output name",
            'e.g. state = {from_output = "stateN"}, or from_output = "none" for a state the data feeds',
        )
    source = "" if source is not None and source.strip().lower() in _NONE else source
    initial = value.get("initial", "zeros")
    if initial not in ("zeros", "data"):
        raise CalibrationError(
            f"{where}: input {name!r} initial {initial!r} is neither zeros nor data",
            "initial = zeros starts every sequence from a zero state; initial = data from the state stored at its "
            "first step",
        )
    return InputSpec(axis, constant, frozenset(value), source, initial)


def arrange_inputs(
    arrays: Mapping[str, np.ndarray], signature: ModelSignature, specs: Mapping[str, InputSpec], source: str
) -> tuple[dict[str, np.ndarray], dict[str, int | None], dict[str, np.ndarray], tuple[InputLayout, ...]]:
    """(samples-first arrays, batch axes, constants, one layout per model input); arrays absent for an
    input are left for the fit check to name."""
    layouts: dict[str, InputLayout] = {}
    names = _batch_names(signature)
    for spec in signature.inputs:
        layout = _decided(spec, arrays.get(spec.name), specs.get(spec.name), source, names)
        if layout is not None:
            layouts[spec.name] = layout
    count = _sample_count(arrays, layouts)
    for spec in signature.inputs:
        if spec.name in arrays and spec.name not in layouts:
            layouts[spec.name] = _inferred_axis(spec, arrays[spec.name], count, source)
    samples = {
        name: _samples_first(arrays[name], layout)
        for name, layout in layouts.items()
        if layout.constant is None and name in arrays
    }
    constants = {name: layout.constant for name, layout in layouts.items() if layout.constant is not None}
    axes = {name: layouts[name].batch_axis for name in samples}
    ordered = tuple(layouts[s.name] for s in signature.inputs if s.name in layouts)
    return samples, axes, constants, ordered


def _batch_names(signature: ModelSignature) -> set[str]:
    """Dim names that mark a batch: containing "batch"; else those shared by several inputs (exporters name
    the batch once for all inputs)."""
    seen: dict[str, int] = {}
    for spec in signature.inputs:
        for name in set(spec.dynamic_dims):
            seen[name] = seen.get(name, 0) + 1
    named = {n for n in seen if "batch" in n.lower()}
    return named or {n for n, k in seen.items() if k > 1}


def _decided(
    spec: TensorSpec, array: np.ndarray | None, given: InputSpec | None, source: str, names: set[str] = frozenset()
) -> InputLayout | None:
    """The layout when a spec or the shapes alone settle it; None when the sample count must decide."""
    rank = len(spec.shape)
    if given is not None and given.constant is not None:
        try:
            value = np.asarray(given.constant, dtype=spec.dtype)
        except (TypeError, ValueError) as exc:
            raise CalibrationError(
                f"input {spec.name!r}: constant {given.constant!r} is not a {spec.dtype} value ({exc})",
                f"give a number or a nested list of numbers of shape {list(spec.shape)}",
            ) from None
        return InputLayout(spec.name, spec.dtype, spec.shape, None, value, "given")
    if given is not None and "batch_axis" in given.given:
        if given.batch_axis is not None and given.batch_axis >= max(rank, 1):
            raise CalibrationError(
                f"input {spec.name!r} has {rank} ax{'i' if rank == 1 else 'e'}s ({spec.describe()}), so batch_axis "
                f"{given.batch_axis} does not exist",
                f"give an axis below {rank}, or batch_axis = none for an input fed one sample at a time"
                if rank
                else f"a rank-0 input has no batch axis: give constant = VALUE, or store {spec.name} as one value",
            )
        if rank == 0 and given.batch_axis is not None:
            raise CalibrationError(
                f"input {spec.name!r} is a scalar ({spec.describe()}) and has no batch axis {given.batch_axis}",
                f"give {spec.name} = {{constant = VALUE}}, or {{batch_axis = none}} for one value per sample",
            )
        return InputLayout(spec.name, spec.dtype, spec.shape, given.batch_axis, None, "given")
    if array is None:
        return None
    if array.ndim == 0 and rank > 0:
        raise CalibrationError(
            f"data {source}, input {spec.name!r}: one value ({array.tolist()!r}) for an input of shape "
            f"{list(spec.shape)}",
            f"store its samples ({len(spec.shape)} axes, samples along the batch axis), or a constant of the "
            f"input's shape: --input {spec.name}:constant=[…]",
        )
    if array.ndim == rank and rank == 0:
        return InputLayout(spec.name, spec.dtype, spec.shape, None, array, "inferred: a scalar, stored as one value")
    if array.ndim == rank + 1:
        how = "inferred: the array has one more axis than the input, counting samples"
        return InputLayout(spec.name, spec.dtype, spec.shape, None, None, how)
    named = [i for i, d in enumerate(spec.shape) if d in names]
    if array.ndim == rank and len(named) == 1:
        how = f"inferred: axis {named[0]} is the batch dim {spec.shape[named[0]]!r}"
        return InputLayout(spec.name, spec.dtype, spec.shape, named[0], None, how)
    dynamic = [i for i, d in enumerate(spec.shape) if _is_dynamic(d)]
    if array.ndim == rank and dynamic[:1] == [0] and (len(dynamic) == 1 or not names):
        return InputLayout(spec.name, spec.dtype, spec.shape, 0, None, "inferred: axis 0 is dynamic")
    return None


def _is_dynamic(dim: int | str) -> bool:
    return isinstance(dim, str)


def _sample_count(arrays: Mapping[str, np.ndarray], layouts: Mapping[str, InputLayout]) -> int | None:
    counts = {
        name: (arrays[name].shape[0] if layout.batch_axis is None else arrays[name].shape[layout.batch_axis])
        for name, layout in layouts.items()
        if layout.constant is None and name in arrays and arrays[name].ndim > (layout.batch_axis or 0)
    }
    return next(iter(counts.values()), None)


def _inferred_axis(spec: TensorSpec, array: np.ndarray, count: int | None, source: str) -> InputLayout:
    """Axis 0 where it fits (the classic layout, and a fixed batch of 1); else the one axis whose size is the
    sample count and whose model dim is dynamic or 1."""
    if array.ndim != len(spec.shape):
        return InputLayout(spec.name, spec.dtype, spec.shape, 0, None, "inferred: default axis 0")
    candidates = [
        axis
        for axis, dim in enumerate(spec.shape)
        if (_is_dynamic(dim) or dim == 1) and (count is None or array.shape[axis] == count)
    ]
    if not candidates or (count is None and 0 in candidates):
        return InputLayout(spec.name, spec.dtype, spec.shape, 0, None, "inferred: axis 0")
    if len(candidates) == 1:
        axis = candidates[0]
        return InputLayout(spec.name, spec.dtype, spec.shape, axis, None, f"inferred: axis {axis} holds the samples")
    samples = f"the other inputs' {count} samples" if count is not None else "the samples"
    raise CalibrationError(
        f"data {source}, input {spec.name!r}: cannot tell which axis of its array {list(array.shape)} holds "
        f"{samples} (model input {spec.describe()})",
        f"say it: recipe `[inputs] {spec.name} = {{batch_axis = N}}` or --input {spec.name}:batch_axis=N "
        f"(or batch_axis=none / constant=VALUE for an input without samples)",
    )


def _samples_first(array: np.ndarray, layout: InputLayout) -> np.ndarray:
    if layout.batch_axis is None or layout.batch_axis == 0 or array.ndim <= layout.batch_axis:
        return array
    return np.moveaxis(array, layout.batch_axis, 0)


def layouts_without_data(signature: ModelSignature, specs: Mapping[str, InputSpec]) -> tuple[InputLayout, ...]:
    """What the model's shapes and the specs alone say of each input (`edgeml check` without --calib)."""
    out = []
    names = _batch_names(signature)
    for spec in signature.inputs:
        decided = _decided(spec, None, specs.get(spec.name), "", names)
        if decided is not None:
            out.append(decided)
        elif not spec.shape:
            how = f"a scalar: give one value in the data, or --input {spec.name}:constant=V"
            out.append(InputLayout(spec.name, spec.dtype, spec.shape, None, None, how, awaits_constant=True))
        else:
            dynamic = [i for i, d in enumerate(spec.shape) if _is_dynamic(d)]
            named = [i for i in dynamic if spec.shape[i] in names]
            axis = named[0] if named else (0 if not dynamic or dynamic[0] == 0 else dynamic[0])
            how = "from the model's shape" + ("" if axis == 0 else f": axis {axis} is its first dynamic or batch dim")
            out.append(InputLayout(spec.name, spec.dtype, spec.shape, axis, None, how + "; the data decides"))
    return tuple(out)

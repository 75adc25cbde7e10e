"""Model signature + per-input specs → which inputs carry state from an output (closed loop), and the data's
sequence boundaries.

A stateful model (an RNN/LSTM/GRU step, streaming audio, a tracker) takes its state as an input and gives the
next one as an output. Evaluated closed-loop, each model (float and every candidate) feeds its own output back,
step after step through each ordered sequence, starting from a zero state (or the stored one) at every
sequence start. The data says so:

- per input, `from_output`: `[inputs] state = {from_output = "stateN", initial = "zeros"}`, `--input
  state:from_output=stateN`, or the `.npz`'s `edgeml_inputs` entry; `from_output = "none"` says the data feeds it;
- when nothing is said, it is inferred where unambiguous: an input named like a state (state, h, c, hidden,
  cell, memory, carry) and exactly one output of the same dtype and a compatible shape whose name starts with
  the input's stem (`state` → `stateN`, `h0` → `hn`, `state_in` → `state_out`);
- sequence boundaries: an `edgeml_sequences` array in the `.npz`, one sequence id per sample (a new sequence
  starts wherever the id changes); without it, all samples are one sequence, in order.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeml.errors import CalibrationError
from edgeml.signature import ModelSignature, TensorSpec

__all__ = ["SEQUENCES_KEY", "Recurrence", "annotated", "decide_recurrence", "sequence_bounds", "sequence_ids"]

SEQUENCES_KEY = "edgeml_sequences"  # the .npz entry holding one sequence id per sample
_STATE_WORDS = ("state", "hidden", "cell", "memory", "carry")
_SHORT_NAME = re.compile(r"(h|c|hx|cx|mem)(_?(0|in|prev|t))?", re.IGNORECASE)
_STEM_SUFFIX = re.compile(r"(_?(in|input|prev|0|t))$", re.IGNORECASE)


@dataclass(frozen=True)
class Recurrence:
    """Input ← `output` of the previous step; a sequence starts from zeros or from the stored sample."""

    output: str
    initial: str = "zeros"
    how: str = "given"

    def describe(self) -> str:
        start = "a zero state" if self.initial == "zeros" else "the stored state"
        return f"fed back from output {self.output!r}, each sequence starting from {start} ({self.how})"


def decide_recurrence(signature: ModelSignature, specs: Mapping[str, Any]) -> dict[str, Recurrence]:
    """{input: Recurrence} from the specs (checked against the signature), else inferred from names and shapes."""
    outputs = {o.name: o for o in signature.outputs}
    found: dict[str, Recurrence] = {}
    for spec in signature.inputs:
        given = specs.get(spec.name)
        source = getattr(given, "from_output", None)
        initial = getattr(given, "initial", "zeros")
        if source == "" or (given is not None and given.constant is not None and source is None):
            continue
        if source is not None:
            _check_pair(spec, source, outputs, given)
            found[spec.name] = Recurrence(source, initial, "given")
            continue
        inferred = _inferred(spec, signature.outputs)
        if inferred is not None:
            found[spec.name] = Recurrence(inferred, initial, _inferred_how(spec, outputs[inferred]))
    return found


def annotated(layouts: tuple[Any, ...], recurrent: Mapping[str, Recurrence]) -> tuple[Any, ...]:
    """Each InputLayout fed back from an output, saying so (`edgeml check` prints it)."""
    return tuple(
        dataclasses.replace(lay, fed_back=recurrent[lay.name].describe(), from_output=recurrent[lay.name].output)
        if lay.name in recurrent
        else lay
        for lay in layouts
    )


def _check_pair(spec: TensorSpec, source: str, outputs: Mapping[str, TensorSpec], given: Any) -> None:
    if source not in outputs:
        raise CalibrationError(
            f"input {spec.name!r}: from_output {source!r} is not an output of the model",
            f'its outputs: {", ".join(o.describe() for o in outputs.values())}; or from_output = "none" when the '
            "data feeds this input",
        )
    if given.constant is not None:
        raise CalibrationError(
            f"input {spec.name!r} is given both a constant and from_output {source!r}",
            "a state fed back from an output changes every step: drop the constant",
        )
    out = outputs[source]
    if not _compatible(spec, out):
        raise CalibrationError(
            f"input {spec.describe()} cannot be fed from output {out.describe()}: "
            + ("their dtypes differ" if spec.dtype != out.dtype else "their shapes differ"),
            "from_output names the output that gives the next state: same dtype, same shape "
            f"(outputs: {', '.join(o.describe() for o in outputs.values())})",
        )


def _compatible(a: TensorSpec, b: TensorSpec) -> bool:
    """Same dtype and rank; fixed dims equal where both are fixed (a named dim may be anything)."""
    if a.dtype != b.dtype or len(a.shape) != len(b.shape) or not a.shape:
        return False
    return all(isinstance(x, str) or isinstance(y, str) or x == y for x, y in zip(a.shape, b.shape, strict=True))


def _looks_like_state(name: str) -> bool:
    return any(w in name.lower() for w in _STATE_WORDS) or _SHORT_NAME.fullmatch(name) is not None


def _stem(name: str) -> str:
    return _STEM_SUFFIX.sub("", name) or name


def _inferred(spec: TensorSpec, outputs: tuple[TensorSpec, ...]) -> str | None:
    if not _looks_like_state(spec.name) or spec.dtype.startswith("int"):
        return None
    stem = _stem(spec.name).lower()
    matches = [
        o.name for o in outputs if o.name != spec.name and o.name.lower().startswith(stem) and _compatible(spec, o)
    ]
    return matches[0] if len(matches) == 1 else None


def _inferred_how(spec: TensorSpec, out: TensorSpec) -> str:
    shape = f"[{', '.join(str(d) for d in spec.shape)}]"
    return (
        f"inferred: output {out.name!r} has its shape {shape} and a state's name; say --input "
        f"{spec.name}:from_output=none if the data feeds it"
    )


def sequence_ids(raw: np.ndarray | None, count: int, source: str) -> np.ndarray | None:
    """The `edgeml_sequences` entry checked: one integer id per sample (None when absent)."""
    if raw is None:
        return None
    ids = np.asarray(raw)
    if ids.ndim != 1 or ids.dtype.kind not in "iu" or len(ids) != count:
        raise CalibrationError(
            f"data {source}: {SEQUENCES_KEY} is {ids.dtype}{list(ids.shape)}, not one integer sequence id per "
            f"sample ({count})",
            f"store e.g. numpy.repeat(numpy.arange(len(lengths)), lengths) as {SEQUENCES_KEY}: a new sequence "
            "starts wherever the id changes",
        )
    return ids


def sequence_bounds(ids: np.ndarray | None, count: int) -> list[tuple[int, int]]:
    """[start, stop) of each sequence, in order: a new one wherever the id changes; one sequence without ids."""
    if ids is None or count == 0:
        return [(0, count)] if count else []
    starts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist()]
    return list(zip(starts, [*starts[1:], count], strict=True))

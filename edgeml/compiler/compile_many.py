"""One model → one signed artifact per target, in one run.

Work that does not depend on the target is shared through the content cache: the PyTorch → ONNX export
happens once, and passes with the same input and configuration (e.g. graph preparation for two ONNX
Runtime-based targets) run once. A target that fails does not stop the others; the result says which
failed and why.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeml.artifact.writer import check_output_free
from edgeml.compiler.compile import CompileResult, compile_model, default_name, default_out
from edgeml.compiler.progress import NullProgress, Progress
from edgeml.compiler.recipe_file import load_recipe_file
from edgeml.errors import EdgemlError, TargetError
from edgeml.targets import TARGETS, load_target

__all__ = ["MultiCompileResult", "compile_many"]


@dataclass
class MultiCompileResult:
    results: dict[str, CompileResult] = field(default_factory=dict)
    failures: dict[str, EdgemlError] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "targets": {t: r.to_dict() for t, r in self.results.items()},
            "failed": {
                t: {"error": e.message, "hint": e.hint, "kind": type(e).__name__} for t, e in self.failures.items()
            },
        }


def compile_many(
    model: str | os.PathLike[str],
    targets: list[str],
    *,
    out: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    **kwargs: Any,
) -> MultiCompileResult:
    """Compile for every target into OUT/<target> (default build/<name>-<target>). An option named
    `TARGET.key` (e.g. `npu-openvino.shape`) applies to that target only; a plain `key` to every target."""
    progress = progress or NullProgress()
    options = kwargs.pop("options", None) or {}
    _check_request(targets, options, kwargs.get("recipe_file"))  # NOTE: a typo must not cost a finished build
    name = kwargs.get("name") or default_name(str(model), kwargs.get("recipe_file"))
    outs = {t: Path(out) / t if out else default_out(name, t) for t in targets}
    for target_out in outs.values():
        check_output_free(target_out, kwargs.get("force", False))
    started = time.perf_counter()
    result = MultiCompileResult()
    for target in targets:
        progress.note(f"target {target}")
        try:
            result.results[target] = compile_model(
                model, target, out=outs[target], progress=progress, options=_options_for(target, options), **kwargs
            )
        except EdgemlError as exc:  # NOTE: one target's failure must not lose the others' artifacts
            result.failures[target] = exc
            progress.note(f"target {target} failed: {exc.message}")
    result.seconds = time.perf_counter() - started
    return result


def _check_request(targets: list[str], options: dict[str, Any], recipe_file) -> None:
    """Every target id, and every option for each target, checked before anything is built."""
    if not targets:
        raise TargetError("no targets given", f"e.g. --targets cpu-ort,cpu-openvino (known: {', '.join(TARGETS)})")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise TargetError(
            f"unknown target{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: nothing was built",
            f"known targets: {', '.join(TARGETS)} (`edgeml targets`)",
        )
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise TargetError(f"target {', '.join(repeated)} is listed twice", "name each target once")
    strays = sorted({k.split(".", 1)[0] for k in options if "." in k} - set(targets))
    if strays:
        raise TargetError(
            f"option {', '.join(k for k in options if k.split('.', 1)[0] in strays)} is scoped to "
            f"{', '.join(strays)}, which is not among the targets ({', '.join(targets)})",
            "scope it to one of the targets (-O TARGET.key=value), or add that target",
        )
    from_file = load_recipe_file(recipe_file).options if recipe_file is not None else {}
    for target in targets:
        load_target(target).recipe(from_file | _options_for(target, options))


def _options_for(target: str, options: dict[str, Any]) -> dict[str, Any]:
    plain = {k: v for k, v in options.items() if "." not in k}
    scoped = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith(f"{target}.")}
    return plain | scoped

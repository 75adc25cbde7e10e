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

from edgeml.compiler.compile import CompileResult, compile_model
from edgeml.compiler.progress import NullProgress, Progress
from edgeml.errors import EdgemlError

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
    started = time.perf_counter()
    result = MultiCompileResult()
    for target in targets:
        progress.note(f"target {target}")
        target_out = Path(out) / target if out else None
        try:
            result.results[target] = compile_model(
                model, target, out=target_out, progress=progress, options=_options_for(target, options), **kwargs
            )
        except EdgemlError as exc:  # NOTE: one target's failure must not lose the others' artifacts
            result.failures[target] = exc
            progress.note(f"target {target} failed: {exc.message}")
    result.seconds = time.perf_counter() - started
    return result


def _options_for(target: str, options: dict[str, Any]) -> dict[str, Any]:
    plain = {k: v for k, v in options.items() if "." not in k}
    scoped = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith(f"{target}.")}
    return plain | scoped

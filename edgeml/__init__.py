"""edgeml: compile trained models per edge target into signed artifacts, roll them out over MQTT, and
bring back what the devices see.

The public API is small and pinned (tests/test_public_api.py). Heavy stacks (torch, onnx, openvino) are
imported inside the functions that need them: `import edgeml` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["EdgemlError", "__version__", "bench", "compile", "create_keypair", "verify"]

from edgeml.artifact import create_keypair, verify
from edgeml.errors import EdgemlError

if TYPE_CHECKING:
    from edgeml.benchmark import BenchResult
    from edgeml.compiler.compile import CompileResult
    from edgeml.compiler.compile_many import MultiCompileResult


def compile(model: Any, target: str | list[str] | None = None, **kwargs: Any) -> CompileResult | MultiCompileResult:
    """Compile `model` for `target` into a signed artifact (see edgeml.compiler.compile.compile_model);
    with a list of targets, one artifact per target under `out` (see edgeml.compiler.compile_many)."""
    if isinstance(target, (list, tuple)):
        from edgeml.compiler.compile_many import compile_many

        return compile_many(model, list(target), **kwargs)
    from edgeml.compiler.compile import compile_model

    return compile_model(model, target, **kwargs)


def bench(artifact: Any, **kwargs: Any) -> BenchResult:
    """Benchmark an artifact (optionally against a baseline); see edgeml.benchmark.bench."""
    from edgeml.benchmark import bench as _bench

    return _bench(artifact, **kwargs)

"""Runtimes behind one small interface: open a model file, run named feeds, get named outputs.

`edgeml bench`, the compiler's host measurements and the device agent all run models through this table,
so what is measured at compile time is what the device runs.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

from edgeml.errors import RuntimeUnavailableError
from edgeml.runtimes.session import Session

__all__ = ["RUNTIMES", "Session", "at_least", "open_session", "runtime_class", "runtime_version"]

# runtime id → (module, class, pip extra). Modules are imported only when a model needs them.
RUNTIMES: dict[str, tuple[str, str, str]] = {
    "onnxruntime": ("edgeml.runtimes.onnxruntime_session", "OrtSession", "runtime-ort"),
    "openvino": ("edgeml.runtimes.openvino_session", "OvSession", "runtime-openvino"),
    "litert": ("edgeml.runtimes.litert_session", "LiteRTSession", "runtime-litert"),
}

# runtime id → the pip distributions that provide it, first found wins
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
    "openvino": ("openvino",),
    "litert": ("ai-edge-litert",),
}


def runtime_version(runtime: str) -> str | None:
    """The installed version of `runtime` (from its package metadata, without importing it), or None."""
    from importlib import metadata  # pulls in email and csv: only when a version is asked for

    for dist in DISTRIBUTIONS.get(runtime, (runtime,)):
        try:
            return metadata.version(dist)[:64]
        except metadata.PackageNotFoundError:
            continue
    return None


def at_least(version: str, minimum: str) -> bool | None:
    """PEP 440 comparison ("1.32.0" ≥ "1.17", "1.20rc1" < "1.21"); None when either is not a version."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(minimum)
    except InvalidVersion:
        return None


def runtime_class(runtime: str) -> type:
    """Import the adapter for `runtime` (and the runtime itself); a clear error names the extra to install."""
    if runtime not in RUNTIMES:
        raise RuntimeUnavailableError(f"unknown runtime {runtime!r}", f"known runtimes: {', '.join(RUNTIMES)}")
    module_name, class_name, extra = RUNTIMES[runtime]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"runtime {runtime} is not installed here ({exc})", f"pip install 'edgeml[{extra}]'"
        ) from exc
    return getattr(module, class_name)


def open_session(
    runtime: str,
    model_path: str | os.PathLike[str],
    threads: int = 1,
    providers: Sequence[str] | None = None,
) -> Session:
    return runtime_class(runtime)(model_path, threads=threads, providers=providers)

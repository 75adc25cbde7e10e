"""`package.module:function` → the function, with errors that say which part failed to import.

The current folder is put on sys.path first (as uvicorn and celery do), so a factory in the user's
project imports without installing it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from edgeml.errors import EdgemlError

__all__ = ["import_callable", "looks_like_callable_spec"]


def looks_like_callable_spec(spec: str) -> bool:
    """`a.b:c` that is not an existing path (so `C:\\model.onnx` and `x:y.onnx` files still work)."""
    module, sep, attr = spec.partition(":")
    return (
        bool(sep)
        and module.replace(".", "").replace("_", "").isalnum()
        and attr.isidentifier()
        and not os.path.exists(spec)
    )


def import_callable(spec: str, error: type[EdgemlError]) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(
            f"cannot import module {module_name!r} from {spec!r}: {exc}",
            "check the dotted path, and run from the folder that holds the package (or pip install it)",
        ) from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise error(f"{module_name} has no function {attr!r}", f"define {attr}() in {module.__file__}")
    return fn

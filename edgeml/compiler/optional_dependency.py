"""A module name + the pip extra that provides it → the imported module, or an error that names the extra.

Heavy toolchains (OpenVINO, NNCF, LiteRT) are optional extras; a target that needs one imports it through
here, so a missing one reads "install edgeml[compile]" instead of a bare ModuleNotFoundError.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgeml.errors import TargetError

__all__ = ["import_optional"]


def import_optional(module: str, extra: str, needed_for: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TargetError(
            f"{needed_for} needs the Python package {module!r}, which is not installed here ({exc})",
            f"pip install 'edgeml[{extra}]'",
        ) from exc

"""Python modules a target's toolchain needs → nothing when they are installed, else an error naming the extra.

Checked by `find_spec` (no import: litert-torch or Vela take seconds to import) when the plan is made, so a
missing toolchain is reported before any work, as `pip install 'edgeml[EXTRA]'`.
"""

from __future__ import annotations

import importlib.util

from edgeml.errors import TargetError

__all__ = ["require_modules"]


def require_modules(modules: tuple[str, ...], extra: str, needed_for: str) -> None:
    missing = [m for m in modules if _absent(m)]
    if missing:
        raise TargetError(
            f"{needed_for} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed here",
            f"pip install 'edgeml[{extra}]'",
        )


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True

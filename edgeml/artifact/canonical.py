"""Manifest dict → canonical bytes: the exact bytes a signature covers.

Sorted keys, no insignificant whitespace, UTF-8, no NaN/Infinity. The same dict always gives the same
bytes, so a signature made on one machine verifies on any other.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["canonical_json"]


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

"""A message, topic or chunk that breaks the wire protocol → one exception with a code and a reason.

Receivers catch `ProtocolError`, log `code` and `reason`, count the code, and carry on: a malformed or
unsupported message is never fatal. `code` is short and stable (for counters and tests); `reason` names
the field or byte that is wrong.
"""

from __future__ import annotations

from edgeml.errors import EdgemlError

__all__ = ["ProtocolError"]


class ProtocolError(EdgemlError):
    """A message that breaks the edgeml/v1 protocol; `code` says which rule, `reason` says where."""

    def __init__(self, code: str, reason: str, hint: str | None = None) -> None:
        super().__init__(reason, hint)
        self.code = code
        self.reason = reason

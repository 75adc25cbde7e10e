"""A decoded JSON object → typed, range-checked fields; anything else → a ProtocolError naming the field.

Every payload's `from_dict` reads through `Fields`, so the rules live in one place: integers are JSON
integers (not bools, not floats) within [0, 2^53), strings are bounded and free of control characters,
identifiers and digests match their patterns, nested objects and lists are bounded in size.
"""

from __future__ import annotations

import re
from typing import Any

from edgeml.protocol.kind import Kind
from edgeml.protocol.protocol_error import ProtocolError

__all__ = [
    "ID_PATTERN",
    "MAX_SAFE_INT",
    "PROTOCOL_VERSION",
    "SHA256_PATTERN",
    "TOKEN_PATTERN",
    "Fields",
    "check_counts",
    "check_int",
    "check_text",
    "header",
]

PROTOCOL_VERSION = 1  # the `v` every edgeml/v1 payload carries today
MAX_SAFE_INT = 2**53 - 1  # the largest integer every JSON reader (JavaScript included) keeps exact
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TOKEN_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # control characters and lone surrogates


def header(kind: Kind) -> dict[str, Any]:
    """The two fields every payload starts with."""
    return {"schema": kind.schema, "v": PROTOCOL_VERSION}


class Fields:
    """Reads one JSON object field by field; `where` names it in errors ("hello", "hello.current")."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            raise ProtocolError("invalid_field", f"{where} is {_kind_of(obj)}, not a JSON object")
        self.obj = obj
        self.where = where

    @classmethod
    def payload(cls, obj: Any, kind: Kind) -> Fields:
        """The top-level object of a `kind` payload, its `schema` and `v` checked."""
        fields = cls(obj, kind.value)
        if obj.get("schema") != kind.schema:
            raise ProtocolError("wrong_schema", f"schema is {obj.get('schema')!r}, expected {kind.schema!r}")
        v = obj.get("v")
        if v != PROTOCOL_VERSION or isinstance(v, bool):
            raise ProtocolError(
                "unsupported_version",
                f"{kind.value} payload has v={v!r}; this edgeml reads v={PROTOCOL_VERSION}",
                "upgrade the older side (agent or fleet) so both speak the same payload version",
            )
        return fields

    def present(self, name: str) -> bool:
        """True when the field is there and not null."""
        return self.obj.get(name) is not None

    def raw(self, name: str) -> Any:
        if not self.present(name):
            raise ProtocolError("missing_field", f"{self.where}.{name} is missing")
        return self.obj[name]

    def integer(self, name: str, lo: int = 0, hi: int = MAX_SAFE_INT) -> int:
        return check_int(self.raw(name), f"{self.where}.{name}", lo, hi)

    def flag(self, name: str) -> bool:
        value = self.raw(name)
        if not isinstance(value, bool):
            raise self.bad(name, "true or false")
        return value

    def text(self, name: str, max_len: int = 128, pattern: re.Pattern[str] | None = None) -> str:
        return check_text(self.raw(name), f"{self.where}.{name}", max_len, pattern)

    def ident(self, name: str) -> str:
        """A device id, rollout id or similar: [A-Za-z0-9][A-Za-z0-9._-]{0,63}."""
        return self.text(name, 64, ID_PATTERN)

    def token(self, name: str) -> str:
        """A lowercase word such as a state or event kind: [a-z][a-z0-9_]{0,31}."""
        return self.text(name, 32, TOKEN_PATTERN)

    def sha256(self, name: str) -> str:
        return self.text(name, 64, SHA256_PATTERN)

    def nested(self, name: str) -> Fields:
        return Fields(self.raw(name), f"{self.where}.{name}")

    def mapping(self, name: str, max_items: int) -> dict[str, Any]:
        value = self.raw(name)
        if not isinstance(value, dict):
            raise self.bad(name, "a JSON object")
        if len(value) > max_items:
            raise ProtocolError("too_many_items", f"{self.where}.{name} has {len(value)} entries, at most {max_items}")
        return value

    def items(self, name: str, max_items: int) -> list[Any]:
        value = self.raw(name)
        if not isinstance(value, list):
            raise self.bad(name, "a JSON array")
        if len(value) > max_items:
            raise ProtocolError("too_many_items", f"{self.where}.{name} has {len(value)} items, at most {max_items}")
        return value

    def bad(self, name: str, expected: str) -> ProtocolError:
        return ProtocolError(
            "invalid_field", f"{self.where}.{name} is {_kind_of(self.obj.get(name))}, expected {expected}"
        )


def check_int(value: Any, where: str, lo: int = 0, hi: int = MAX_SAFE_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("invalid_field", f"{where} is {_kind_of(value)}, expected an integer")
    if not lo <= value <= hi:
        raise ProtocolError("out_of_range", f"{where} is {value}, outside [{lo}, {hi}]")
    return value


def check_text(value: Any, where: str, max_len: int = 128, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str):
        raise ProtocolError("invalid_field", f"{where} is {_kind_of(value)}, expected a string")
    if len(value) > max_len:
        raise ProtocolError("out_of_range", f"{where} is {len(value)} characters long, at most {max_len}")
    if pattern is not None and not pattern.fullmatch(value):
        raise ProtocolError("invalid_field", f"{where} {value!r} does not match {pattern.pattern}")
    if _CONTROL.search(value):
        raise ProtocolError("invalid_field", f"{where} holds control characters or invalid UTF-16 surrogates")
    return value


def check_counts(value: Any, where: str, max_items: int) -> tuple[int, ...]:
    """A histogram: a JSON array of at most `max_items` non-negative integers."""
    if not isinstance(value, list):
        raise ProtocolError("invalid_field", f"{where} is {_kind_of(value)}, expected an array of counts")
    if len(value) > max_items:
        raise ProtocolError("too_many_items", f"{where} has {len(value)} counts, at most {max_items}")
    return tuple(check_int(c, f"{where}[{i}]") for i, c in enumerate(value))


def _kind_of(value: Any) -> str:
    if value is None:
        return "null/missing"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'…' if len(text) > 40 else ''}"

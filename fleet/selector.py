"""`target=cpu-ort,tag:site=berlin,id=cam-*` → a predicate over devices (every term must hold).

Terms: `target=ID`, `tag:KEY=VALUE`, `id=PATTERN` (shell-style `*`), `all`. A term that does not parse is
refused with its position, so an operator never rolls out to a selector they did not mean.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from edgeml.fleet.database import FleetError

__all__ = ["TAG_KEY", "TAG_VALUE", "Selector", "parse_selector"]

TAG_KEY, TAG_VALUE = r"[\w.-]+", r"[\w.:/-]+"  # NOTE: device_tags.py accepts exactly these, so a set tag is selectable
_TERM = re.compile(rf"^(?:(target|id)=([\w.*-]+)|tag:({TAG_KEY})=({TAG_VALUE})|(all))$")


@dataclass(frozen=True)
class Selector:
    text: str
    terms: tuple[tuple[str, str, str], ...]  # (kind, key, value)

    def matches(self, device: dict[str, Any]) -> bool:
        return all(_term_holds(term, device) for term in self.terms)


def _term_holds(term: tuple[str, str, str], device: dict[str, Any]) -> bool:
    kind, key, value = term
    if kind == "target":
        return device["target"] == value
    if kind == "id":
        return fnmatch.fnmatchcase(device["id"], value)
    if kind == "tag":
        return str(device["tags"].get(key)) == value
    return True


def parse_selector(text: str) -> Selector:
    terms, pos = [], 0
    for raw in text.split(","):
        term = raw.strip()
        m = _TERM.match(term)
        if not m:
            raise FleetError(
                f"selector {text!r}: cannot read {term!r} at position {pos}",
                "use target=ID, tag:KEY=VALUE, id=PATTERN or all, joined by commas",
            )
        if m.group(1):
            terms.append((m.group(1), "", m.group(2)))
        elif m.group(3):
            terms.append(("tag", m.group(3), m.group(4)))
        else:
            terms.append(("all", "", ""))
        pos += len(raw) + 1
    return Selector(text, tuple(terms))

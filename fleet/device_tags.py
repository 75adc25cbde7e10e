"""`site=berlin floor=3`, remove `rack` → a checked change to a device's tags, applied to its tag dict.

A key must read as a selector's tag key and a value as a selector's tag value (selector.py), so whatever is
set here `tag:KEY=VALUE` selects again: keys are letters, digits, `_ . -` (no `, = :`), at most 64
characters; values add `: /`, at most 128. A device holds at most 32 tags. A key both set and removed, an
empty change, or a device over the cap is refused with the culprit named, before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from edgeml.fleet.database import FleetError
from edgeml.fleet.selector import TAG_KEY, TAG_VALUE

__all__ = ["MAX_KEY", "MAX_TAGS", "MAX_VALUE", "TagChange"]

MAX_KEY, MAX_VALUE, MAX_TAGS = 64, 128, 32
_KEY, _VALUE = re.compile(TAG_KEY), re.compile(TAG_VALUE)
_KEY_RULE = f"letters, digits, _ . - (no , = :), 1-{MAX_KEY} characters"
_VALUE_RULE = f"letters, digits, _ . - : / (no , = or spaces), 1-{MAX_VALUE} characters"


@dataclass(frozen=True)
class TagChange:
    """Keys to set (or overwrite) and keys to remove; checked on construction."""

    assign: Mapping[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.assign and not self.remove:
            raise FleetError("no tag to set or remove", "give KEY=VALUE (e.g. site=berlin) or --remove KEY")
        for key in [*self.assign, *self.remove]:
            _check(key, _KEY, MAX_KEY, f"tag key {key!r}", _KEY_RULE)
        for key, value in self.assign.items():
            _check(value, _VALUE, MAX_VALUE, f"the value of tag {key!r}", _VALUE_RULE)
        both = sorted(set(self.assign) & set(self.remove))
        if both:
            raise FleetError(f"tag key(s) {both} are both set and removed", "set a key or remove it, not both")

    @classmethod
    def parse(cls, assignments: Iterable[str], remove: Iterable[str] = ()) -> TagChange:
        """`["site=berlin", "floor=3"]` (the CLI's words) and keys to remove."""
        assign: dict[str, str] = {}
        for text in assignments:
            key, sep, value = text.partition("=")
            if not sep:
                raise FleetError(f"{text!r} is not KEY=VALUE", "e.g. site=berlin; to remove a tag use --remove KEY")
            if key in assign and assign[key] != value:
                raise FleetError(f"tag {key!r} is set twice ({assign[key]!r}, {value!r})", "give each key once")
            assign[key] = value
        return cls(assign, tuple(dict.fromkeys(remove)))

    def apply(self, device_id: str, tags: Mapping[str, str]) -> dict[str, str]:
        """The device's tags after the change."""
        after = {k: v for k, v in tags.items() if k not in self.remove} | dict(self.assign)
        if len(after) > MAX_TAGS:
            raise FleetError(
                f"device {device_id} would hold {len(after)} tags; the most is {MAX_TAGS}",
                f"remove some with `edgeml fleet tag id={device_id} --remove KEY`",
            )
        return dict(sorted(after.items()))

    def describe(self) -> str:
        """`set site=berlin, floor=3; removed rack` for a person."""
        parts = []
        if self.assign:
            parts.append("set " + ", ".join(f"{k}={v}" for k, v in self.assign.items()))
        if self.remove:
            parts.append("removed " + ", ".join(self.remove))
        return "; ".join(parts)


def _check(text: object, pattern: re.Pattern, limit: int, what: str, rule: str) -> None:
    if not isinstance(text, str) or not text:
        raise FleetError(f"{what} is empty" if text == "" else f"{what} is {text!r}, not text", f"use {rule}")
    if len(text) > limit:
        raise FleetError(f"{what} has {len(text)} characters; the most is {limit}", f"use {rule}")
    if not pattern.fullmatch(text):
        bad = next((c for c in text if not pattern.fullmatch(c)), text)
        raise FleetError(f"{what} has {bad!r}, which a selector cannot match", f"use {rule}")

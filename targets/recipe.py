"""Target defaults + user overrides → a typed, frozen recipe; unknown or ill-typed options are refused.

Overrides come from `-O key=value` flags (strings, parsed by the field's type) or a recipe file (already
typed). The recipe that results is recorded in the manifest, so a compile can be reproduced exactly.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from edgeml.errors import TargetError

__all__ = ["describe_options", "make_recipe", "objective_option", "parse_option_flags", "search_budget_option"]


def search_budget_option() -> Any:
    """The `search_budget_s` field every target with an accuracy-aware (int8-mixed) search declares."""
    from edgeml.option import option

    return option(
        0.0,
        "seconds the accuracy-aware (int8-mixed) search may spend before it stops with its best mix so far "
        "(0: 60 s for a model under 10 MB, 6 s per MB above)",
    )


def objective_option(default: str) -> Any:
    """The `objective` field every target declares: how passing candidates are ranked."""
    from edgeml.option import option

    return option(default, "among passing candidates prefer the fastest or the smallest", ("latency", "size"))


def parse_option_flags(flags: tuple[str, ...] | list[str]) -> dict[str, str]:
    out = {}
    for flag in flags:
        key, sep, value = flag.partition("=")
        if not sep or not key.strip():
            raise TargetError(f"target option {flag!r} is not key=value", "e.g. -O calibrate_method=entropy")
        target, dot, name = key.strip().rpartition(".")
        out[f"{target}{dot}{name.replace('-', '_')}"] = value.strip()  # NOTE: TARGET.key scopes it to one target
    return out


def describe_options(recipe_cls: type, defaults: Mapping[str, Any]) -> list[dict[str, Any]]:
    hints = typing.get_type_hints(recipe_cls)
    return [
        {
            "name": f.name,
            "type": _type_name(hints[f.name]),
            "default": defaults.get(f.name, f.default),
            "help": f.metadata.get("help", ""),
            "choices": list(f.metadata.get("choices", ())),
        }
        for f in dataclasses.fields(recipe_cls)
    ]


def make_recipe(recipe_cls: type, target_id: str, defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(recipe_cls)}
    hints = typing.get_type_hints(recipe_cls)
    values = {}
    for source, mapping in (("target.toml", defaults), ("option", overrides)):
        for key, raw in mapping.items():
            if key not in fields:
                raise TargetError(
                    f"target {target_id} has no option {key!r} (from {source})",
                    f"its options: {', '.join(fields)} (see `edgeml targets --options {target_id}`)",
                )
            values[key] = _coerce(raw, hints[key], key, target_id)
            _check_choice(fields[key], values[key], target_id)
    return recipe_cls(**values)


def _check_choice(field: dataclasses.Field, value: Any, target_id: str) -> None:
    choices = field.metadata.get("choices")
    if choices and value not in choices:
        raise TargetError(
            f"target {target_id} option {field.name}={value!r} is not one of {', '.join(map(str, choices))}"
        )


def _coerce(raw: Any, kind: Any, key: str, target_id: str) -> Any:
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if typing.get_origin(kind) is tuple:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(i).strip() for i in items if str(i).strip())
        return kind(raw)
    except (TypeError, ValueError):
        raise TargetError(f"target {target_id} option {key}={raw!r} is not a {_type_name(kind)}") from None


def _type_name(kind: Any) -> str:
    return "list" if typing.get_origin(kind) is tuple else getattr(kind, "__name__", str(kind))

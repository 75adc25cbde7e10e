"""Chosen values → a complete, commented `agent.toml`: every option with its description, its environment
variable, and either the chosen value or its default (commented out, so the file stays short to edit)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from edgeml.device_agent.config.agent_config import SECTIONS, iter_options

__all__ = ["render_config"]


def render_config(values: Mapping[tuple[str, str], Any]) -> str:
    """TOML text for `values` ((section, key) → value); options not given show their default, commented."""
    lines = ["# edgeml device agent configuration (docs/agent.md explains every key).", ""]
    for section, cls in SECTIONS.items():
        lines += [f"[{section}]", f"# {(cls.__doc__ or '').strip()}"]
        for spec in (s for s in iter_options() if s.section == section):
            lines.append(f"# {spec.help}  (env: {spec.env})")
            if (section, spec.key) in values:
                lines.append(f"{spec.key} = {_toml(values[(section, spec.key)])}")
            else:
                lines.append(f"# {spec.key} = {_toml(spec.default)}")
        lines.append("")
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string is a JSON string

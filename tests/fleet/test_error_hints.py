"""Every error the fleet raises says what to do next: each FleetError (and kind) is built with a hint, each
ApiError with a fix, so the CLI prints a `hint:` line and the HTTP API's `fix` is never null."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FLEET = Path(__file__).resolve().parents[2] / "fleet"
HINT_AT = {  # error class → (positional index of its hint, keyword name)
    "FleetError": (1, "hint"),
    "FleetNotFoundError": (1, "hint"),
    "FleetConflictError": (1, "hint"),
    "FleetBusyError": (1, "hint"),
    "ApiError": (3, "fix"),
}


def _errors_without_hint(path: Path) -> list[str]:
    missing = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in HINT_AT:
            index, keyword = HINT_AT[node.func.id]
            if len(node.args) <= index and keyword not in {k.arg for k in node.keywords}:
                missing.append(f"{path.name}:{node.lineno} {node.func.id}")
    return missing


@pytest.mark.parametrize("path", sorted(FLEET.glob("*.py")), ids=lambda p: p.name)
def test_every_fleet_error_carries_a_hint(path):
    assert _errors_without_hint(path) == [], "give each a hint: what the user should do next"

"""pyproject.toml: extras pip can resolve quickly, and an install that imports on the oldest Python it claims."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_extras_are_flat():
    """pip 26.3 spent over 10 minutes resolving `.[all,dev]` while extras named `edgeml[...]`."""
    extras = PROJECT["optional-dependencies"]
    for name, requirements in extras.items():
        assert not [r for r in requirements if r.replace(" ", "").startswith("edgeml")], name


def test_all_is_compile_agent_fleet_runtime_ort_and_dev():
    extras = PROJECT["optional-dependencies"]
    spelled = set().union(*(extras[e] for e in ("compile", "agent", "fleet", "runtime-ort", "dev")))
    assert set(extras["all"]) == spelled
    assert set(extras["ethos-u"]) >= set(extras["litert"])


def test_toml_is_read_on_python_3_10_too():
    """`requires-python >=3.10`, and tomllib is 3.11+: tomli is a core dependency there, and every module that
    imports tomllib falls back to it."""
    assert PROJECT["requires-python"] == ">=3.10"
    assert "tomli>=2; python_version < '3.11'" in PROJECT["dependencies"]
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        if "tomllib" in imported:
            assert "tomli" in imported, f"{path} imports tomllib without the tomli fallback"


def _sources() -> list[Path]:
    folders = ("edgeml", "targets", "calibration", "fleet", "device_agent")
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py") if "__pycache__" not in p.parts)

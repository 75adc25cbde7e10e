"""The architecture's import rules (DESIGN §2), checked on every module: light imports stay light, and no
layer reaches into one it must not know."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "onnx", "openvino", "nncf", "tensorflow", "onnxruntime", "ai_edge_litert", "jax")

# package folder → edgeml subpackages its modules must never import
FORBIDDEN = {
    "device_agent": ("edgeml.compiler", "edgeml.fleet", "edgeml.targets", "edgeml.calibration", "edgeml.cli"),
    "edgeml/artifact": ("edgeml.compiler", "edgeml.targets", "edgeml.device_agent", "edgeml.fleet", "edgeml.cli"),
    "edgeml/compiler/passes": ("edgeml.targets", "edgeml.compiler.compile", "edgeml.cli", "edgeml.fleet"),
    "calibration": ("edgeml.targets", "edgeml.compiler.compile", "edgeml.cli", "edgeml.fleet"),
    "targets": ("edgeml.compiler.compile", "edgeml.cli", "edgeml.fleet", "edgeml.device_agent"),
    "edgeml/protocol": (
        "edgeml.compiler",
        "edgeml.targets",
        "edgeml.calibration",
        "edgeml.device_agent",
        "edgeml.fleet",
        "edgeml.cli",
        "paho",
    ),
    "edgeml/transport": (
        "edgeml.compiler",
        "edgeml.targets",
        "edgeml.calibration",
        "edgeml.device_agent",
        "edgeml.fleet",
    ),
}


@pytest.mark.parametrize(
    "module", ["edgeml", "edgeml.device_agent", "edgeml.artifact", "edgeml.cli", "edgeml.protocol", "edgeml.sketches"]
)
def test_light_modules_import_no_heavy_stack(module):
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import {module} pulled in {out.strip()}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("folder", list(FORBIDDEN))
def test_layers_do_not_import_what_they_must_not(folder):
    files = list((ROOT / folder).rglob("*.py"))
    assert files, f"no modules under {folder}"
    violations = [
        f"{p.relative_to(ROOT)} imports {name}"
        for p in files
        for name in _imports(p)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[folder])
    ]
    assert not violations, "\n".join(violations)


# a runtime adapter imports its own runtime; runtimes/__init__.py imports the adapter only when a model needs it
RUNTIME_ADAPTERS = {"device_agent/runtimes/openvino_session.py": "openvino"}


def test_device_agent_never_imports_compiler_stacks():
    heavy = [
        f"{p.relative_to(ROOT)} imports {n}"
        for p in (ROOT / "device_agent").rglob("*.py")
        for n in _imports(p)
        if n.split(".")[0] in ("torch", "onnx", "openvino", "nncf", "tensorflow")
        and RUNTIME_ADAPTERS.get(p.relative_to(ROOT).as_posix()) != n.split(".")[0]
    ]
    assert not heavy, "\n".join(heavy)

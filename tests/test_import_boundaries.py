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

# The light core every part shares (DESIGN §2): the artifact format, the wire protocol, the transport, the
# runtime adapters and the top-level modules. It never imports a layer built on it.
CORE = (
    "edgeml/artifact",
    "edgeml/protocol",
    "edgeml/transport",
    "edgeml/runtimes",
    *(p.relative_to(ROOT).as_posix() for p in (ROOT / "edgeml").glob("*.py") if p.name != "__init__.py"),
)  # NOTE: edgeml/__init__.py is the public facade: it imports the compiler lazily, inside its functions
ABOVE_CORE = ("edgeml.compiler", "edgeml.targets", "edgeml.calibration", "edgeml.device_agent", "edgeml.fleet",
              "edgeml.cli", "edgeml.flows", "edgeml.tracking")  # fmt: skip

# package folder (or module) → edgeml subpackages its modules must never import
FORBIDDEN = {
    **{folder: ABOVE_CORE for folder in CORE},
    "edgeml/protocol": (*ABOVE_CORE, "paho"),
    "device_agent": ("edgeml.compiler", "edgeml.fleet", "edgeml.targets", "edgeml.calibration", "edgeml.cli"),
    "fleet": ("edgeml.compiler", "edgeml.targets", "edgeml.calibration", "edgeml.device_agent", "edgeml.cli"),
    "calibration": ("edgeml.compiler", "edgeml.targets", "edgeml.device_agent", "edgeml.fleet", "edgeml.cli"),
    "edgeml/batch": ("edgeml.compiler", "edgeml.targets", "edgeml.device_agent", "edgeml.fleet", "edgeml.cli"),
    "edgeml/compiler/passes": ("edgeml.targets", "edgeml.compiler.compile", "edgeml.cli", "edgeml.fleet"),
    "edgeml/compiler": ("edgeml.device_agent", "edgeml.fleet", "edgeml.cli"),
    "targets": ("edgeml.compiler.compile", "edgeml.cli", "edgeml.fleet", "edgeml.device_agent"),
}


@pytest.mark.parametrize(
    "module", ["edgeml", "edgeml.device_agent", "edgeml.artifact", "edgeml.cli", "edgeml.protocol", "edgeml.sketches"]
)
def test_light_modules_import_no_heavy_stack(module):
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import {module} pulled in {out.strip()}"


@pytest.mark.parametrize(
    "module", ["edgeml.runtimes", "edgeml.timing", "edgeml.benchmark", "edgeml.calibration.reference_profile",
               "edgeml.fleet", "edgeml.artifact", "edgeml.protocol"],
)  # fmt: skip
def test_the_core_and_its_neighbours_load_no_agent_and_no_compiler(module):
    """Importing a runtime adapter or the drift profile must not drag the device agent or the compiler in."""
    layers = ("edgeml.device_agent", "edgeml.compiler")
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith({layers!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import {module} loaded {out.strip()}"


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
    files = [ROOT / folder] if folder.endswith(".py") else list((ROOT / folder).rglob("*.py"))
    assert files, f"no modules under {folder}"
    violations = [
        f"{p.relative_to(ROOT)} imports {name}"
        for p in files
        for name in _imports(p)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[folder])
    ]
    assert not violations, "\n".join(violations)


def test_device_agent_never_imports_compiler_stacks():
    heavy = [
        f"{p.relative_to(ROOT)} imports {n}"
        for p in (ROOT / "device_agent").rglob("*.py")
        for n in _imports(p)
        if n.split(".")[0] in ("torch", "onnx", "openvino", "nncf", "tensorflow")
    ]
    assert not heavy, "\n".join(heavy)

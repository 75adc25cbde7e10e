"""MLflow and Prefect are optional extras: importing edgeml, its CLI, the agent, the fleet, or even edgeml.tracking
and edgeml.flows loads neither; only the layers above the fleet (cli, tracking, flows) name them at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = ("mlflow", "prefect")


@pytest.mark.parametrize(
    "modules",
    ["edgeml", "edgeml.cli", "edgeml.device_agent", "edgeml.fleet", "edgeml.tracking, edgeml.flows",
     "edgeml.cli.fleet_loop_hooks, edgeml.flows.auto_retrain, edgeml.cli.demo_cmd"],
)  # fmt: skip
def test_importing_loads_no_mlflow_and_no_prefect(modules):
    code = f"import sys, {modules}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({EXTRAS!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"import {modules} loaded {out.strip()}"


def test_only_tracking_and_flows_import_the_extras_at_module_level():
    import ast

    offenders = []
    for path in (ROOT / "edgeml").rglob("*.py"):
        rel = path.relative_to(ROOT / "edgeml").as_posix()
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: functions import them when called
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if any(n.split(".")[0] in EXTRAS for n in names) and rel != "flows/retrain_flow.py":
                offenders.append(rel)
    for folder in ("fleet", "device_agent", "targets", "calibration"):
        for path in (ROOT / folder).rglob("*.py"):
            if any(f"import {e}" in path.read_text() or f"from {e}" in path.read_text() for e in EXTRAS):
                offenders.append(path.relative_to(ROOT).as_posix())
    assert not offenders, offenders

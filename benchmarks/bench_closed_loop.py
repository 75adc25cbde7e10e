"""Closed loop vs open loop on a stateful model (issue 12 item 2): how much a candidate's decisions differ from
float when it carries its own state through each ordered sequence, against when it is fed float's states.

    python benchmarks/bench_closed_loop.py MODEL.onnx EVAL.npz ARTIFACT_DIR [ARTIFACT_DIR ...] [--output output]

EVAL.npz is read as `edgeml compile --eval` reads it (its `edgeml_inputs` / `edgeml_sequences` entries, state
feedback inferred where unambiguous). For each artifact (a cpu-ort build, e.g. `--precision int8-static` with
a loosened budget) it prints, for the probability output: decision agreement (p > 0.5) and max |Δp| closed
loop and open loop, and the worst output's SQNR both ways. The float model runs closed-loop too; open loop
feeds every model the float model's closed-loop states.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeml.calibration.read_dataset import read_dataset  # noqa: E402
from edgeml.compiler.closed_loop import with_float_states  # noqa: E402
from edgeml.compiler.evaluate import fidelity, run_dataset  # noqa: E402
from edgeml.compiler.intake import onnx_signature  # noqa: E402
from edgeml.runtimes import open_session  # noqa: E402


def figures(model: Path, eval_npz: Path, artifacts: list[Path], output: str) -> list[dict]:
    import onnx

    signature = onnx_signature(onnx.load(str(model)))
    float_session = open_session("onnxruntime", model)
    evalset = with_float_states(float_session, read_dataset(eval_npz, signature, "evaluation"), keep_recurrent=True)
    if not evalset.recurrent:
        raise SystemExit(f"{model}: no input is fed back from an output; nothing to compare")
    ref = {"closed": run_dataset(float_session, evalset), "open": run_dataset(float_session, evalset.open_loop())}
    rows = []
    for folder in artifacts:
        manifest = json.loads((folder / "manifest.json").read_text())
        session = open_session("onnxruntime", folder / "model.onnx")
        row = {"artifact": str(folder), "precision": manifest.get("precision") or manifest.get("target", {})}
        for mode, data in (("closed", evalset), ("open", evalset.open_loop())):
            got = run_dataset(session, data)
            fid = fidelity(ref[mode], got)
            p_ref, p_got = ref[mode][output].reshape(-1), got[output].reshape(-1)
            row[mode] = {
                "decision_agreement": float(np.mean((p_ref > 0.5) == (p_got > 0.5))),
                "max_abs_err": float(np.abs(p_ref - p_got).max()),
                "worst_sqnr_db": min(f["sqnr_db"] for f in fid.values()),
            }
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("eval", type=Path)
    parser.add_argument("artifacts", type=Path, nargs="+")
    parser.add_argument("--output", default="output")
    args = parser.parse_args()
    for row in figures(args.model, args.eval, args.artifacts, args.output):
        print(json.dumps(row))


if __name__ == "__main__":
    main()

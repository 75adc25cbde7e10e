"""Golden artifacts: the sha256 of every shipped model file for the bundled examples, per target and pinned
precision, built without a cache. A refactor that claims "behaviour unchanged" records them before and
compares after, on the same host (INT8 calibration runs float kernels, so the bytes may differ between CPUs;
that is why these hashes are not a test):

    python benchmarks/golden_artifacts.py --record /tmp/golden-before.json   # on the old commit
    python benchmarks/golden_artifacts.py --compare /tmp/golden-before.json  # on the new one

Each precision is pinned so the host's timing never picks a different candidate; `int8-mixed` runs its
search against a floor its all-INT8 base misses on every host, so the search itself is exercised.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"

# (source, target, precision, extra keyword arguments of edgeml.compile)
CASES: list[tuple[str, str, str, dict]] = [
    *[("model.onnx", "cpu-ort", p, {}) for p in ("fp32", "int8-static", "int8-dynamic")],
    ("model.onnx", "cpu-ort", "int8-mixed", {"min_cosine": 0.99999}),
    *[("model.onnx", "cpu-openvino", p, {}) for p in ("fp32", "int8")],
    ("model.onnx", "cpu-openvino", "int8-mixed", {"min_cosine": 0.9999}),
    *[("model.onnx", "npu-openvino", p, {}) for p in ("fp16", "int8")],
    *[("model.onnx", "gpu-ort", p, {}) for p in ("fp32", "fp16", "int8")],
    *[("model.pt2", "tflite-cpu", p, {}) for p in ("fp32", "int8-dynamic", "int8")],
    ("model.pt2", "ethos-u55-128", "int8", {}),
    ("model.pt2", "ethos-u65-256", "int8", {}),
    ("model.pt2", "ethos-u55-128", "int8-mixed", {"min_cosine": 0.99999}),
]


def build_all(selected: set[str] | None) -> dict[str, dict]:
    import edgeml
    from edgeml.artifact import create_keypair

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="edgeml-golden-") as tmp:
        key, _ = create_keypair(Path(tmp) / "keys")
        for source, target, precision, extra in CASES:
            case = f"{source}:{target}:{precision}"
            if selected and case not in selected:
                continue
            out = Path(tmp) / "out"
            started = time.perf_counter()
            try:
                result = edgeml.compile(
                    str(DIGITS / source), target, key=key, out=out, force=True, no_cache=True,
                    calib=DIGITS / "calib.npz", eval_data=DIGITS / "calib.npz",
                    options={"precision": precision, "min_speedup": 0}, **extra,
                )  # fmt: skip
            except edgeml.EdgemlError as exc:
                results[case] = {"error": f"{type(exc).__name__}: {exc.message}"}
                print(f"{case}: {results[case]['error']}", flush=True)
                continue
            files = {f["path"]: f["sha256"] for f in result.manifest["files"] if _is_model_file(f["path"])}
            results[case] = {"files": files, "shipped": result.decision.chosen}
            print(f"{case}: {len(files)} model file(s), {time.perf_counter() - started:.1f} s", flush=True)
            shutil.rmtree(out)
    return results


def _is_model_file(path: str) -> bool:
    return path.endswith((".onnx", ".xml", ".bin", ".tflite"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--record", type=Path, help="write the hashes to this JSON file")
    group.add_argument("--compare", type=Path, help="compare with hashes recorded earlier on this host")
    parser.add_argument("--case", action="append", help="only SOURCE:TARGET:PRECISION (repeatable)")
    args = parser.parse_args()
    results = build_all(set(args.case) if args.case else None)
    if args.record:
        args.record.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(results)} cases in {args.record}")
        return 0
    before = json.loads(args.compare.read_text())
    changed = [case for case in results if before.get(case) != results[case]]
    for case in changed:
        print(f"CHANGED {case}:\n  before {before.get(case)}\n  after  {results[case]}")
    print(f"{len(results) - len(changed)} of {len(results)} cases byte-identical")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())

"""MTCNN P-/R-/O-Net (facenet-pytorch, weights from its wheel) compiled for the Ethos-U targets: how much runs
on the NPU, and how long the device takes, NPU and CPU part.

For each net and target: `edgeml.compile("benchmarks.mtcnn_nets:<net>", target)` with 64 calibration and 32
evaluation crops of scikit-learn's sample images (benchmarks/mtcnn_nets.py), then from `vela_report.json`:
TFLite operators on the NPU (and Vela's own console count), MACs on the NPU, Vela's NPU cycles and time,
edgeml's stated estimate of the CPU part, and the worst per-output cosine and channel cosine vs float.

`--before DIR` also reads DIR/<net>/reference_int8.tflite (an artifact compiled by an older edgeml, e.g.
before issue 12's PReLU quantization) and runs the same Vela report on it, so both sides are counted alike.

    pip install --no-deps facenet-pytorch==2.6.0
    python benchmarks/bench_ethos_u.py [--nets pnet,rnet,onet] [--targets ethos-u55-128,ethos-u65-256]
                                       [--before DIR] [--out benchmarks/results/ethos_u_mtcnn.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.mtcnn_nets import SIZES, data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="pnet,rnet,onet")
    parser.add_argument("--targets", default="ethos-u55-128,ethos-u65-256")
    parser.add_argument("--before", type=Path, help="folder of older artifacts: <net>/reference_int8.tflite")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ethos_u_mtcnn.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for net in args.nets.split(","):
            for target in args.targets.split(","):
                if args.before:
                    rows.append(_before(args.before / net / "reference_int8.tflite", net, target, Path(scratch)))
                rows.append(_compiled(net, target, Path(scratch)))
                print(_line(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(["", _HEADER, *map(_row, rows)]))


def _compiled(net: str, target: str, scratch: Path) -> dict[str, Any]:
    import edgeml
    from edgeml.artifact import create_keypair

    folder = scratch / f"{net}-{target}"
    np.savez(scratch / f"{net}_calib.npz", x=data(SIZES[net], 64, 0))
    np.savez(scratch / f"{net}_eval.npz", x=data(SIZES[net], 32, 1))
    key = scratch / "keys" / "signing.key"
    if not key.exists():
        create_keypair(key.parent)
    start = time.perf_counter()
    result = edgeml.compile(
        f"benchmarks.mtcnn_nets:{net}", target, key=key, out=folder, cache_dir=scratch / "cache", force=True,
        calib=scratch / f"{net}_calib.npz", eval_data=scratch / f"{net}_eval.npz",
    )  # fmt: skip
    fidelity = result.manifest["metrics"]["fidelity"]
    report = json.loads((folder / "vela_report.json").read_text())
    return _figures(report, net, target, "edgeml (this commit)") | {
        "compile_s": round(time.perf_counter() - start, 1),
        "worst_cosine": min(f["cosine"] for f in fidelity.values()),
        "worst_channel_cosine": min(f.get("worst_channel_cosine", 1.0) for f in fidelity.values()),
        "verdict": result.decision.reason,
    }


def _before(tflite: Path, net: str, target: str, scratch: Path) -> dict[str, Any]:
    from edgeml.compiler.lowerings.run_vela import VelaOptions, run_vela
    from edgeml.compiler.lowerings.vela_report import vela_report
    from edgeml.targets import load_target

    defaults = load_target(target).spec.recipe_defaults
    options = VelaOptions(target, defaults["system_config"], defaults["memory_mode"])
    model = tflite.read_bytes()
    report = vela_report(run_vela(model, options, scratch, "bench"), model, options, {"npu": "-", "cpu_reference": "-"})
    return _figures(report, net, target, f"before ({tflite.parent.parent.name})")


def _figures(report: dict[str, Any], net: str, target: str, build: str) -> dict[str, Any]:
    ops, time_ms = report["operators"], report["estimated_time_ms"]
    return {
        "net": net,
        "target": target,
        "build": build,
        "npu_ops": ops["npu"],
        "cpu_ops": ops["cpu"],
        "npu_op_share": report["npu_share"]["operators"],
        "vela_console_npu_percent": ops["vela_console"]["npu_percent"],
        "npu_mac_share": report["npu_share"]["macs"],
        "npu_cycles": report["cycles"].get("total", 0),
        "npu_ms": time_ms["npu"],
        "cpu_ms_estimate": time_ms["cpu"],
        "total_ms_estimate": time_ms["total"],
        "fallback": sorted({f["op"] for f in report["fallback"]}),
    }


_HEADER = (
    "| net | target | build | ops on NPU (TFLite) | Vela console NPU % | MACs on NPU | NPU cycles | NPU ms (Vela) "
    "| CPU ms (est.) | total ms | worst cos / channel | CPU fallback |\n" + "|---" * 12 + "|"
)


def _row(r: dict[str, Any]) -> str:
    fidelity = f"{r['worst_cosine']:.4f} / {r['worst_channel_cosine']:.4f}" if "worst_cosine" in r else "—"
    return (
        f"| {r['net']} | {r['target']} | {r['build']} | {r['npu_ops']}/{r['npu_ops'] + r['cpu_ops']} "
        f"({r['npu_op_share']:.0%}) | {r['vela_console_npu_percent']:g} % | {r['npu_mac_share']:.1%} | "
        f"{r['npu_cycles']} | {r['npu_ms']:.4g} | {r['cpu_ms_estimate']:.4g} | {r['total_ms_estimate']:.4g} | "
        f"{fidelity} | {', '.join(r['fallback']) or 'none'} |"
    )


def _line(r: dict[str, Any]) -> str:
    return f"{r['net']} {r['target']} {r['build']}: " + _row(r)


if __name__ == "__main__":
    main()

"""Every target edgeml compiles for, vs each native flow's defaults, on the digits CNN, in one run.

1. `edgeml.compile(model.pt2, [cpu-ort, cpu-openvino, npu-openvino, tflite-cpu, ethos-u55-128, gpu-ort])`
   (one multi-target call, fresh cache), then the same targets one by one (each with its own fresh cache):
   size, accuracy, compile time per target; Vela cycles / time / SRAM / flash for ethos-u55-128.
2. The native flows' defaults on the same model and calibration set:
     ort-static   onnxruntime quantize_static(model.onnx, out, reader), all defaults (see bench_cpu_ort.py)
     nncf         nncf.quantize(ov.convert_model(model.onnx), nncf.Dataset(calib samples)) -> OpenVINO CPU
     litert fp32  litert_torch.convert(module, sample)
     aeq default  ai_edge_quantizer.Quantizer(litert fp32) + recipe.dynamic_wi8_afp32()
     vela default `vela reference_int8.tflite --accelerator-config ethos-u55-128` (no --config/--system-config),
                  plus `vela reference_int8.tflite` with nothing at all (Vela's default accelerator, ethos-u55-256)
3. Every host-runnable model timed in one interleaved loop (edgeml.timing.interleaved_latency, 1 thread,
   eval sample 0, predecessor-balanced orders, 3 repeats, medians), ratio vs ONNX Runtime FP32 of the source,
   with an A/A control (a second FP32 session on the same file).

    python benchmarks/bench_targets.py [--quick] [--out benchmarks/results/targets.json] [--keep]
                                       [--targets tflite-cpu,...]   (a subset: its goals only)
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cpu_ort import (  # noqa: E402  (shared helpers of the cpu-ort benchmark)
    NOISE_FLOOR,
    calibration_reader,
    environment,
    load_npz,
    predecessor_balanced_orders,
    samples,
)

DIGITS = ROOT / "examples" / "digits"
SOURCE_PT2 = DIGITS / "model.pt2"
SOURCE_ONNX = DIGITS / "model.onnx"  # the same trained weights, exported to ONNX: the FP32 reference
CALIB, EVAL = DIGITS / "calib.npz", DIGITS / "eval.npz"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "targets.json"
TARGETS = ["cpu-ort", "cpu-openvino", "npu-openvino", "tflite-cpu", "ethos-u55-128", "gpu-ort"]
OPTIONS = {"npu-openvino.shape": "x:1x1x8x8"}  # the .pt2's input is `x` (manifest / edgeml check)
REPEATS = 3

FP32, AA = "ort fp32 (source)", "ort fp32 (A/A)"
ORT_STATIC, NNCF, LITERT_FP32, AEQ = "ort-static defaults", "nncf defaults", "litert fp32", "aeq defaults"
# which native flow's defaults each edgeml target is held against (latency and accuracy)
NATIVE_FOR = {
    "cpu-ort": ORT_STATIC,
    "gpu-ort": ORT_STATIC,
    "cpu-openvino": NNCF,
    "npu-openvino": NNCF,
    "tflite-cpu": AEQ,
    "ethos-u55-128": "vela defaults",
}
RUNTIME_OF = {"onnx": "onnxruntime", "openvino-ir": "openvino", "tflite": "litert", "tflite-vela": "litert"}


_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ edgeml


def _compile_kwargs(cache: Path) -> dict[str, Any]:
    return dict(calib=CALIB, eval_data=EVAL, cache_dir=cache, force=True, threads=1, options=dict(OPTIONS))


_COMPILE_SCRIPT = """
import json, sys, time
t = time.perf_counter()
import edgeml
spec = json.loads(sys.argv[1])
result = edgeml.compile(spec.pop("model"), spec.pop("targets"), **spec)
wall = time.perf_counter() - t
results = getattr(result, "results", None) or {result.manifest["target"]["id"]: result}
failures = getattr(result, "failures", {})
print(json.dumps({
    "wall_s": wall,
    "targets": {t: {"seconds": r.seconds, "notes": list(r.notes)} for t, r in results.items()},
    "failures": {t: e.message for t, e in failures.items()},
}))
"""


def _compile_in_fresh_process(targets: list[str], out: Path, cache: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Compile as a user's command does: a new Python process (imports paid), a fresh cache. Returns the
    process's wall time (start to exit) with the compile's own figures."""
    spec = {"model": str(SOURCE_PT2), "targets": targets if len(targets) > 1 else targets[0], "out": str(out),
            "calib": str(CALIB), "eval_data": str(EVAL), "cache_dir": str(cache), "force": True, "threads": 1,
            "options": options}  # fmt: skip
    t = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", _COMPILE_SCRIPT, json.dumps(spec)], capture_output=True, text=True, cwd=ROOT
    )
    wall = time.perf_counter() - t
    if run.returncode != 0:
        raise RuntimeError(f"compile of {targets} failed: {run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1]) | {"process_wall_s": wall}


def compile_edgeml(work: Path, targets_run: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    log(f"edgeml: one multi-target compile of {len(targets_run)} targets (fresh process, fresh cache)")
    multi = _compile_in_fresh_process(targets_run, work / "multi", work / "cache-multi", dict(OPTIONS))
    multi_wall = multi["process_wall_s"]
    if multi["failures"]:
        log(f"  failed targets: {multi['failures']}")

    targets: dict[str, Any] = {}
    for tgt, res in multi["targets"].items():
        folder = work / "multi" / tgt
        m = json.loads((folder / "manifest.json").read_text())
        metrics = m.get("metrics", {})
        entry = {
            "precision": m.get("precision"),
            "folder": str(folder),
            "model_file": m["target"]["model_file"],
            "artifact_format": m["target"]["artifact_format"],
            "runtime": m["target"]["runtime"],
            "size_bytes": _model_bytes(folder / m["target"]["model_file"]),
            "artifact_bytes": sum(p.stat().st_size for p in folder.iterdir() if p.is_file()),
            "compile_s_in_multi": round(res["seconds"], 3),
            "compiler_accuracy": metrics.get("accuracy"),
            "compiler_float_accuracy": metrics.get("float_accuracy"),
            "decision": {k: m["decision"][k] for k in ("reason", "verdicts")},
            "candidates_p50_ms": {n: c["latency"]["p50_ms"] for n, c in m["decision"]["candidates"].items()},
            "notes": m["target"].get("notes", []) + res["notes"],
        }
        if tgt.startswith("ethos-u"):
            rep = json.loads((folder / "vela_report.json").read_text())
            entry["vela"] = {
                "system_config": rep.get("system_config"),
                "memory_mode": rep.get("memory_mode"),
                "cycles_total": rep["cycles"]["total"],
                "cycles_npu": rep["cycles"]["npu"],
                "inference_time_ms": rep["inference_time_ms"],
                "sram_kib": rep["memory_kib"]["sram"],
                "off_chip_flash_kib": rep["memory_kib"]["off_chip_flash"],
                "on_chip_flash_kib": rep["memory_kib"]["on_chip_flash"],
                "npu_ops_percent": rep["operators"]["npu_percent"],
            }
            entry["host_model"] = str(folder / "reference_int8.tflite")  # the INT8 model Vela compiled
        else:
            entry["host_model"] = str(folder / m["target"]["model_file"])
        targets[tgt] = entry

    log("edgeml: the same targets one by one (each its own fresh process and cache, as six commands would)")
    single: dict[str, float | None] = {}
    for tgt in targets_run:
        options = {k.split(".", 1)[1]: v for k, v in OPTIONS.items() if k.startswith(f"{tgt}.")}
        try:
            alone = _compile_in_fresh_process([tgt], work / "single" / tgt, work / f"cache-{tgt}", options)
            single[tgt] = round(alone["process_wall_s"], 3)
        except RuntimeError as exc:
            single[tgt] = None
            log(f"  {tgt} failed alone: {exc}")
        if tgt in targets:
            targets[tgt]["compile_s_alone"] = single[tgt]
        log(f"  {tgt}: {single[tgt]} s")
    ok = [v for v in single.values() if v is not None]
    comp = {
        "multi_wall_s": round(multi_wall, 3),
        "multi_in_process_s": round(multi["wall_s"], 3),
        "one_by_one_sum_s": round(sum(ok), 3),
        "one_by_one_s": single,
        "failures": multi["failures"],
    }
    comp["speedup_multi_vs_one_by_one"] = round(comp["one_by_one_sum_s"] / multi_wall, 3)
    return targets, comp


# ----------------------------------------------------------------------------------- native flows


def native_flows(work: Path, calib: dict[str, np.ndarray], sample0: np.ndarray, ethos_int8: Path | None):
    """Each native flow with its defaults. Returns {name: {"path", "runtime", "produce_s", "call"}} and the
    Vela runs (or a reason each was skipped)."""
    flows: dict[str, dict[str, Any]] = {}
    logging.getLogger().setLevel(logging.ERROR)

    log("native: onnxruntime quantize_static, defaults")
    from onnxruntime.quantization import quantize_static

    p = work / "ort_static.onnx"
    t = time.perf_counter()
    quantize_static(str(SOURCE_ONNX), str(p), calibration_reader(calib))
    flows[ORT_STATIC] = {
        "path": p,
        "runtime": "onnxruntime",
        "produce_s": time.perf_counter() - t,
        "call": "quantize_static(model.onnx, out, reader): defaults (QDQ S8S8 MinMax per-tensor)",
    }

    log("native: nncf.quantize(ov.convert_model(model.onnx), nncf.Dataset(calib)), defaults")
    try:
        import nncf
        import openvino as ov

        t = time.perf_counter()
        ovm = ov.convert_model(str(SOURCE_ONNX))
        q = nncf.quantize(ovm, nncf.Dataset(samples(calib)))
        p = work / "nncf" / "model.xml"
        p.parent.mkdir()
        ov.save_model(q, str(p))
        flows[NNCF] = {
            "path": p,
            "runtime": "openvino",
            "produce_s": time.perf_counter() - t,
            "call": "nncf.quantize(ov.convert_model(onnx), nncf.Dataset(calib samples)): defaults",
        }
    except Exception as exc:
        flows[NNCF] = {"skipped": f"{type(exc).__name__}: {exc}"}

    log("native: litert_torch.convert + ai_edge_quantizer default recipe (dynamic_wi8_afp32)")
    try:
        import litert_torch
        import torch
        from ai_edge_quantizer import quantizer, recipe

        t = time.perf_counter()
        module = torch.export.load(str(SOURCE_PT2)).module()
        fp = work / "litert_fp32.tflite"
        litert_torch.convert(module, (torch.from_numpy(sample0),)).export(str(fp))
        flows[LITERT_FP32] = {
            "path": fp,
            "runtime": "litert",
            "produce_s": time.perf_counter() - t,
            "call": "litert_torch.convert(module, (sample,))",
        }
        t = time.perf_counter()
        qz = quantizer.Quantizer(str(fp))
        qz.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        ap = work / "aeq_dynamic_wi8.tflite"
        qz.quantize().export_model(str(ap), overwrite=True)
        flows[AEQ] = {
            "path": ap,
            "runtime": "litert",
            "produce_s": time.perf_counter() - t,
            "call": "Quantizer(fp32.tflite) + recipe.dynamic_wi8_afp32() (its default recipe)",
        }
    except Exception as exc:
        flows.setdefault(LITERT_FP32, {"skipped": f"{type(exc).__name__}: {exc}"})
        flows[AEQ] = {"skipped": f"{type(exc).__name__}: {exc}"}

    vela: dict[str, Any] = {}
    if ethos_int8 is not None and shutil.which("vela"):
        for label, extra in (
            ("u55-128, no --config/--system-config", ["--accelerator-config", "ethos-u55-128"]),
            ("all defaults (Vela's default accelerator)", []),
        ):
            log(f"native: vela {label}")
            out = work / ("vela-" + ("128" if extra else "default"))
            t = time.perf_counter()
            r = subprocess.run(
                ["vela", str(ethos_int8), *extra, "--output-dir", str(out)], capture_output=True, text=True
            )
            if r.returncode != 0:
                vela[label] = {"skipped": (r.stderr or r.stdout)[-500:]}
                continue
            row = next(csv.DictReader(next(out.glob("*_summary_*.csv")).open()))
            vela[label] = {
                "command": " ".join(["vela", "reference_int8.tflite", *extra]),
                "seconds": round(time.perf_counter() - t, 3),
                "accelerator": row["accelerator_configuration"],
                "system_config": row["system_config"],
                "memory_mode": row["memory_mode"],
                "cycles_total": int(float(row["cycles_total"])),
                "cycles_npu": int(float(row["cycles_npu"])),
                "inference_time_ms": float(row["inference_time"]) * 1e3,
                "sram_kib": float(row["sram_memory_used"]),
                "off_chip_flash_kib": float(row["off_chip_flash_memory_used"]),
                "on_chip_flash_kib": float(row["on_chip_flash_memory_used"]),
            }
    else:
        vela["skipped"] = "no vela on PATH or no ethos artifact"
    return flows, vela


# ------------------------------------------------------------------------------- quality + timing


def open_model(runtime: str, path: Path):
    from edgeml.runtimes import open_session

    return open_session(runtime, path, threads=1)


def feed_for(session, x: np.ndarray) -> dict[str, np.ndarray]:
    return {session.signature.inputs[0].name: x}


def logits(session, xs: np.ndarray) -> np.ndarray:
    return np.concatenate([next(iter(session.run(feed_for(session, xs[i : i + 1])).values())) for i in range(len(xs))])


def quality(ref: np.ndarray, out: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    r, o = ref.astype(np.float64), out.astype(np.float64)
    cos = (r * o).sum(1) / (np.linalg.norm(r, axis=1) * np.linalg.norm(o, axis=1) + 1e-30)
    return {
        "accuracy": float((o.argmax(1) == labels).mean() * 100),
        "cosine_mean": float(cos.mean()),
        "top1_agreement": float((o.argmax(1) == r.argmax(1)).mean()),
    }


def time_all(sessions: dict[str, Any], x0: np.ndarray, seconds: float) -> dict[str, dict[str, Any]]:
    from edgeml.timing import interleaved_latency

    names = list(sessions)
    feeds = {n: feed_for(sessions[n], x0) for n in names}
    orders = predecessor_balanced_orders(names)
    reps = []
    for r in range(REPEATS):
        parts = [
            interleaved_latency(
                {n: sessions[n] for n in o},
                {n: feeds[n] for n in o},
                warmup=20 if i == 0 else 3,
                min_rounds=30,
                max_rounds=1_000_000,
                max_seconds=seconds / len(orders),
            )
            for i, o in enumerate(orders)
        ]
        reps.append({n: float(np.mean([p[n].p50_ms for p in parts])) for n in names})
        log(f"  timing repeat {r + 1}/{REPEATS} done")
    out = {}
    for n in names:
        p50s = [rep[n] for rep in reps]
        ratios = [rep[n] / rep[FP32] for rep in reps]
        out[n] = {
            "p50_ms": float(np.median(p50s)),
            "ratio_vs_ort_fp32": float(np.median(ratios)),
            "p50_ms_per_repeat": [round(v, 5) for v in p50s],
            "ratio_per_repeat": [round(v, 4) for v in ratios],
        }
    return out


# ------------------------------------------------------------------------------------------- goals


def check_goals(rows: dict[str, Any], targets: dict[str, Any], vela: dict[str, Any], comp: dict[str, Any]):
    tol = max(NOISE_FLOOR, abs(rows[AA]["ratio_vs_ort_fp32"] - 1.0))
    goals: dict[str, Any] = {"noise_tolerance": round(tol, 4), "per_target": {}}
    for tgt, native in NATIVE_FOR.items():
        if tgt not in comp["one_by_one_s"]:
            continue  # not in this run's --targets
        if tgt not in targets:
            goals["per_target"][tgt] = {"verdict": "not checked: target failed"}
            continue
        e = rows[f"edgeml {tgt}"]
        g: dict[str, Any] = {"vs": native}
        if native == "vela defaults":
            v = vela.get("u55-128, no --config/--system-config", {})
            if "cycles_total" in v:
                g["cycles_ratio"] = round(targets[tgt]["vela"]["cycles_total"] / v["cycles_total"], 4)
                g["latency"] = "met" if g["cycles_ratio"] <= 1.0 else "not met"
            else:
                g["latency"] = "not checked: vela defaults did not run"
            g["accuracy"] = "same INT8 model (Vela is given edgeml's INT8 TFLite): not a separate check"
        else:
            n = rows.get(native)
            if n is None or "p50_ms" not in n:
                goals["per_target"][tgt] = {"vs": native, "verdict": "not checked: native flow skipped"}
                continue
            ratio = float(
                np.median([a / b for a, b in zip(e["p50_ms_per_repeat"], n["p50_ms_per_repeat"], strict=False)])
            )
            g["latency_ratio_vs_native"] = round(ratio, 4)
            g["latency"] = "met" if ratio <= 1.0 else ("met within noise" if ratio <= 1 + tol else "not met")
            g["accuracy_points_vs_native"] = round(e["accuracy"] - n["accuracy"], 2)
            g["accuracy"] = "met" if e["accuracy"] >= n["accuracy"] else "not met"
        if tgt in ("npu-openvino", "gpu-ort"):
            g["caveat"] = "no NPU/GPU here: host latency is the OpenVINO CPU plugin / ORT CPU EP, not the device's"
        goals["per_target"][tgt] = g
    goals["multi_target_faster_than_one_by_one"] = {
        "multi_s": comp["multi_wall_s"],
        "one_by_one_s": comp["one_by_one_sum_s"],
        "verdict": "met" if comp["multi_wall_s"] < comp["one_by_one_sum_s"] else "not met",
    }
    return goals


# -------------------------------------------------------------------------------------------- main


def _model_bytes(path: Path) -> int:
    """Model file size; an OpenVINO IR counts its .xml and its .bin."""
    extra = path.with_suffix(".bin") if path.suffix == ".xml" else None
    return path.stat().st_size + (extra.stat().st_size if extra and extra.exists() else 0)


def _kib(n: int | None) -> str:
    return "—" if n is None else f"{n / 1024:.1f} KiB"


def print_table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=180)
    t = Table(
        title=f"digits CNN — every target vs native defaults; host p50: 1 thread, median of {REPEATS} "
        "interleaved repeats"
    )
    for c in (
        "model",
        "runtime here",
        "precision",
        "size",
        "top-1 %",
        "cos vs fp32",
        "p50 ms",
        "vs ort fp32",
        "produce s (multi / alone)",
    ):
        t.add_column(c, justify="left" if c in ("model", "runtime here") else "right")
    for n, r in res["rows"].items():
        t.add_row(
            n,
            r.get("runtime", "—"),
            str(r.get("precision", "—")),
            _kib(r.get("size_bytes")),
            f"{r['accuracy']:.2f}" if "accuracy" in r else "—",
            f"{r['cosine_mean']:.5f}" if "cosine_mean" in r else "—",
            f"{r['p50_ms']:.4f}" if "p50_ms" in r else "—",
            f"{r['ratio_vs_ort_fp32']:.3f}×" if "ratio_vs_ort_fp32" in r else "—",
            r.get("produce", "—"),
        )
    con.print(t)
    e = res["edgeml_targets"].get("ethos-u55-128", {}).get("vela")
    if e:
        con.print(
            f"ethos-u55-128 (edgeml, {e['system_config']}/{e['memory_mode']}): {e['cycles_total']} cycles, "
            f"{e['inference_time_ms']:.4f} ms, SRAM {e['sram_kib']} KiB, off-chip flash "
            f"{e['off_chip_flash_kib']} KiB, {e['npu_ops_percent']}% ops on NPU"
        )
    for label, v in res["vela_defaults"].items():
        if isinstance(v, dict) and "cycles_total" in v:
            con.print(
                f"vela {label} ({v['accelerator']}, {v['system_config']}/{v['memory_mode']}): "
                f"{v['cycles_total']} cycles, {v['inference_time_ms']:.4f} ms, SRAM {v['sram_kib']} KiB, "
                f"off-chip flash {v['off_chip_flash_kib']} KiB"
            )
    c = res["compile"]
    con.print(
        f"compile: multi-target {c['multi_wall_s']:.1f} s vs one by one {c['one_by_one_sum_s']:.1f} s "
        f"({c['speedup_multi_vs_one_by_one']:.2f}×)"
    )
    g = res["goals"]
    for tgt, v in g["per_target"].items():
        con.print(
            f"  goal {tgt} vs {v.get('vs')}: latency {v.get('latency', v.get('verdict'))} "
            f"{v.get('latency_ratio_vs_native', v.get('cycles_ratio', ''))}; accuracy {v.get('accuracy', '')} "
            f"{v.get('accuracy_points_vs_native', '')}"
        )
    m = g["multi_target_faster_than_one_by_one"]
    con.print(f"  goal multi-target faster than one by one: {m['verdict']}  (noise tol {g['noise_tolerance']:.1%})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 s per interleaved repeat instead of 10 s")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset of the targets to compile")
    args = ap.parse_args(argv)
    targets_run = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(targets_run) - set(TARGETS))
    if unknown:
        ap.error(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    started = time.perf_counter()
    seconds = 3.0 if args.quick else 10.0
    work = Path(tempfile.mkdtemp(prefix="edgeml-bench-targets-"))
    os.environ["EDGEML_CONFIG_DIR"] = str(work / "config")  # throwaway signing key
    calib, _ = load_npz(CALIB)
    ev, labels = load_npz(EVAL)
    xs = next(iter(ev.values())).astype(np.float32)
    try:
        targets, comp = compile_edgeml(work, targets_run)
        ethos = targets.get("ethos-u55-128", {}).get("host_model")
        flows, vela = native_flows(work, calib, xs[:1], Path(ethos) if ethos else None)

        # every host-runnable model: (name, runtime, path, extra info)
        models: dict[str, dict[str, Any]] = {
            FP32: {"runtime": "onnxruntime", "path": SOURCE_ONNX, "precision": "fp32", "produce": "—"},
        }
        for tgt, e in targets.items():
            models[f"edgeml {tgt}"] = {
                "runtime": RUNTIME_OF[e["artifact_format"]],
                "path": Path(e["host_model"]),
                "precision": e["precision"],
                "produce": f"{e['compile_s_in_multi']:.1f} / {e.get('compile_s_alone') or float('nan'):.1f}",
            }
        for n, f in flows.items():
            if "path" in f:
                models[n] = {
                    "runtime": f["runtime"],
                    "path": f["path"],
                    "precision": "native defaults",
                    "produce": f"{f['produce_s']:.2f}",
                }
        log(f"accuracy on {len(xs)} eval samples, one per call, for {len(models)} models")
        sessions = {n: open_model(m["runtime"], m["path"]) for n, m in models.items()}
        ref = logits(sessions[FP32], xs)
        rows: dict[str, Any] = {}
        for n, m in models.items():
            rows[n] = {
                "runtime": m["runtime"],
                "precision": m["precision"],
                "produce": m["produce"],
                "size_bytes": _model_bytes(Path(m["path"])),
                "path": str(m["path"]),
            }
            rows[n] |= quality(ref, logits(sessions[n], xs), labels)
        if "edgeml ethos-u55-128" in rows:
            rows["edgeml ethos-u55-128"]["runtime"] = "litert (reference_int8)"
            rows["edgeml ethos-u55-128"]["size_bytes"] = targets["ethos-u55-128"]["size_bytes"]  # model_vela.tflite
        for n in ("edgeml npu-openvino",):
            if n in rows:
                rows[n]["runtime"] = "openvino (CPU plugin)"
        if "edgeml gpu-ort" in rows:
            rows["edgeml gpu-ort"]["runtime"] = "onnxruntime (CPU EP)"

        timed = dict(sessions)
        timed[AA] = open_model("onnxruntime", SOURCE_ONNX)
        timed = {FP32: timed.pop(FP32), AA: timed.pop(AA), **timed}
        log(f"interleaved timing of {len(timed)} sessions: {REPEATS} × {seconds:g} s, 1 thread, eval sample 0")
        lat = time_all(timed, xs[:1], seconds)
        rows[AA] = {"runtime": "onnxruntime", "precision": "fp32 (control)", "produce": "—"}
        rows = {FP32: rows.pop(FP32), AA: rows.pop(AA), **rows}
        for n in rows:
            rows[n] |= lat[n]
        res: dict[str, Any] = {
            "benchmark": "targets",
            "command": " ".join(
                ["python", "benchmarks/bench_targets.py", *(argv if argv is not None else sys.argv[1:])]
            ),
            "quick": args.quick,
            "settings": {
                "threads": 1,
                "repeats": REPEATS,
                "seconds_per_repeat": seconds,
                "feed": "eval sample 0, batch 1",
                "targets": targets_run,
                "options": OPTIONS,
                "source": str(SOURCE_PT2.relative_to(ROOT)),
                "fp32_reference": str(SOURCE_ONNX.relative_to(ROOT)),
            },
            "environment": environment(),
            "edgeml_targets": targets,
            "compile": comp,
            "native_flows": {
                n: {k: (str(v) if isinstance(v, Path) else v) for k, v in f.items()} for n, f in flows.items()
            },
            "vela_defaults": vela,
            "rows": rows,
        }
        res["goals"] = check_goals(rows, targets, vela, comp)
        print_table(res)
    finally:
        if args.keep:
            log(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    res["total_seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    log(f"done in {res['total_seconds']} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real-model corpus × targets: what `edgeml compile` does with models users bring (issue 12), beside the anchors.

For each corpus model (examples/corpus: silero-vad ONNX/If, flat and TorchScript; MTCNN P/R/O-Net; PP-OCR
cls/rec/det; MiniLM; six synthetic failure classes) and each target, `edgeml compile` runs as a subprocess
(a traceback is a cell result, not a crash of this script) with a fresh pass cache, and the cell records:

  result        shipped | refused (the clean `error:` line) | TRACEBACK (its last line and deepest edgeml frame)
                | KILLED / TIMEOUT
  precision     what shipped
  speed         p50 of ONNX Runtime FP32 on the source ÷ p50 of the shipped model, timed in one interleaved run
                per model (edgeml.timing) with every other host-runnable result of that model: >1 is faster
  fidelity      the manifest's figures for the shipped candidate (worst cosine, SQNR, max error, worst channel)
  task          the corpus task check vs float (examples/corpus/task_checks.py): `agree` and its details
  compile_s     wall time of the subprocess; peak_rss_mb: the child's peak RSS (os.wait4)

Anchors on the same model, with the same task check and the same interleaved timing (ONNX sources only):
ORT quantize_static defaults (QDQ, calibration samples through a CalibrationDataReader), ORT
quantize_dynamic defaults, NNCF defaults (nncf.quantize on ov.convert_model(model.onnx), OpenVINO CPU).

gpu-ort artifacts run on ONNX Runtime's CPU provider when this host has no CUDA (the table says so).
tflite-cpu and ethos-u55-128 run only where the corpus model has a PyTorch source (factory or TorchScript).

    python benchmarks/bench_models.py [--models a,b] [--targets cpu-ort,...] [--quick]
        [--json benchmarks/results/models.json] [--markdown benchmarks/README_models.md] [--no-anchors]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "corpus"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
import task_checks  # noqa: E402

TARGETS = ["cpu-ort", "cpu-openvino", "gpu-ort", "tflite-cpu", "ethos-u55-128"]
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "models.json"
DEFAULT_MD = ROOT / "benchmarks" / "README_models.md"
ANCHORS = ("ort-static defaults", "ort-dynamic defaults", "nncf defaults")
FP32 = "ort fp32 (source)"
# the real models first, the large and slow ones last
ORDER = [n for n in corpus.ENTRIES if n not in ("ocr_rec", "ocr_det", "minilm")] + ["ocr_rec", "ocr_det", "minilm"]


# --- one compile ------------------------------------------------------------------------------------------------


def compile_cmd(entry: corpus.Entry, folder: Path, target: str, out: Path, quick: bool) -> list[str] | None:
    source = entry.source_for(folder, target)
    if source is None:
        return None
    cmd = [sys.executable, "-c", "import sys; from edgeml.cli import main; sys.exit(main())", "compile", source]
    cmd += ["-t", target, "--calib", str(folder / "calib.npz"), "--eval", str(folder / "eval.npz")]
    cmd += ["-o", str(out), "--force", "--name", entry.name, "--json"]
    cmd += ["--calib-samples", "32" if quick else "128"]
    return cmd


def run_child(cmd: list[str], env: dict[str, str], timeout_s: float, log: Path) -> dict[str, Any]:
    """Run cmd in its own process group; rc, wall time, the child's peak RSS (wait4), stdout, stderr."""
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT, start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "rc": proc.returncode,
        "timed_out": timed_out.is_set(),
        "compile_s": round(time.perf_counter() - start, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 0),
        "stdout": log.with_suffix(".out").read_text(errors="replace"),
        "stderr": log.with_suffix(".err").read_text(errors="replace"),
    }


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def classify(child: dict[str, Any]) -> dict[str, Any]:
    """shipped / refused / TRACEBACK / KILLED / TIMEOUT, with the line that says why."""
    text = child["stdout"] + "\n" + child["stderr"]
    if child["timed_out"]:
        return {"result": "TIMEOUT", "why": f"no result after {child['compile_s']} s"}
    if "Traceback (most recent call last)" in text:
        tb = text[text.rindex("Traceback (most recent call last)") :]
        frames = [m for m in _FRAME.finditer(tb) if "edgeml" in m.group(1) or "/targets/" in m.group(1)]
        lines = [ln for ln in tb.splitlines() if ln.strip()]
        last = next((ln for ln in lines[1:] if not ln.startswith(" ") and not ln.startswith("File")), lines[-1])
        where = ""
        if frames:
            f = frames[-1]
            where = f"{f.group(1).split('/edgeml/')[-1].split('/corpus/')[-1]}:{f.group(2)} in {f.group(3)}"
        return {"result": "TRACEBACK", "why": last.strip()[:400], "where": where}
    if child["rc"] in (-9, 137):
        return {"result": "KILLED", "why": f"killed (rc {child['rc']}), peak RSS {child['peak_rss_mb']} MB"}
    try:
        doc = json.loads(child["stdout"])
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("ok") is False:
        why = f"error: {doc.get('error', '')}" + (f" (hint: {doc['hint']})" if doc.get("hint") else "")
        return {"result": "refused", "why": why[:600], "kind": doc.get("kind")}
    if child["rc"] == 0 and isinstance(doc, dict):
        return {"result": "shipped", "precision": doc.get("precision"), "out": doc.get("out")}
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
    if errors:
        return {"result": "refused", "why": errors[-1][:600]}
    return {"result": "FAILED", "why": f"rc {child['rc']}: " + (text.strip().splitlines() or [""])[-1][:400]}


# --- what shipped --------------------------------------------------------------------------------------------


def fidelity_summary(fidelity: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Worst figure over outputs of every numeric key the manifest reports (names kept: the set grows)."""
    out: dict[str, Any] = {}
    for figures in fidelity.values():
        for key, value in figures.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or key == "worst_channel":
                continue
            worse = max if ("err" in key or "error" in key) else min
            out[key] = worse(out[key], value) if key in out else value
    return out


def artifact_model(out: Path) -> tuple[str, Path, dict[str, Any]]:
    manifest = json.loads((out / "manifest.json").read_text())
    target = manifest.get("target", {})
    return target.get("runtime", "onnxruntime"), out / target.get("model_file", "model.onnx"), manifest


def open_runner(runtime: str, path: Path) -> Any:
    """An edgeml runtime session, CPU, one thread."""
    from edgeml.runtimes import open_session

    return open_session(runtime, path, threads=1)


def _npu_summary(manifest: dict[str, Any], out: Path) -> dict[str, Any]:
    """Ethos-U: the pre-flight's operator share and CPU fallbacks (target notes), Vela's estimate."""
    summary: dict[str, Any] = {}
    for note in manifest.get("target", {}).get("notes", []):
        if m := re.search(r"(\d+) of (\d+) operators predicted on the NPU(, [\d.]+% of [\d.]+ \w MACs)?", note):
            summary["npu_ops"] = f"{m.group(1)}/{m.group(2)}" + (m.group(3) or "")
            summary["cpu_fallback"] = sorted(set(re.findall(r"→ (\w+):", note)))
    report = out / "vela_report.json"
    if report.exists():
        vela = json.loads(report.read_text())
        summary["vela"] = {k: v for k, v in vela.items() if isinstance(v, (int, float, str)) and len(str(v)) < 80}
    return summary


def evaluate_artifact(folder: Path, out: Path, target: str) -> dict[str, Any]:
    """Figures of what shipped: the manifest's fidelity and speed, and the task check run on this host."""
    runtime, path, manifest = artifact_model(out)
    decision = manifest.get("decision", {})
    chosen = decision.get("chosen") or manifest.get("precision")
    candidate = decision.get("candidates", {}).get(chosen, {})
    metrics = manifest.get("metrics") or {}
    cell: dict[str, Any] = {"fidelity": fidelity_summary(candidate.get("fidelity") or {})}
    cell["verdict"] = decision.get("reason", "")
    cell["edgeml_speedup_vs_float"] = metrics.get("speedup_vs_float")
    if manifest.get("target", {}).get("artifact_format") == "tflite-vela":
        cell["npu"] = _npu_summary(manifest, out)
        path = out / (metrics.get("measured_on") or {}).get("model_file", "reference_int8.tflite")
    try:
        session = open_runner(runtime, path)
        cell["session"] = session
        cell["task"] = task_checks.run_check(folder, session.run)
        if target == "gpu-ort":
            cell["task"]["note"] = "run on ONNX Runtime CPU (no CUDA here)"
        if path.name == "reference_int8.tflite":
            cell["task"]["note"] = "the INT8 TFLite Vela compiled, on LiteRT CPU"
    except Exception as exc:  # third-party runtimes raise anything: record it as the cell's task result
        cell["task"] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
    return cell


# --- anchors ---------------------------------------------------------------------------------------------------


def _calib_feeds(folder: Path, n: int) -> list[dict[str, np.ndarray]]:
    meta = corpus.load_meta(folder)
    samples = {k: a[:n] for k, a in corpus.load_samples(folder, "calib").items()}
    count = len(next(iter(samples.values())))
    return [task_checks._feed(meta, samples, i) for i in range(count)]


def anchor_ort_static(folder: Path, work: Path, n: int) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(_calib_feeds(folder, n))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    out = work / "ort_static.onnx"
    quantize_static(str(folder / "reference.onnx"), str(out), Reader())
    return out


def anchor_ort_dynamic(folder: Path, work: Path, n: int) -> Path:
    from onnxruntime.quantization import quantize_dynamic

    out = work / "ort_dynamic.onnx"
    quantize_dynamic(str(folder / "reference.onnx"), str(out))
    return out


def anchor_nncf(folder: Path, work: Path, n: int) -> Path:
    import nncf
    import openvino as ov

    model = ov.convert_model(str(folder / "reference.onnx"))
    quantized = nncf.quantize(model, nncf.Dataset(_calib_feeds(folder, n)), subset_size=n)
    out = work / "nncf.xml"
    ov.save_model(quantized, str(out))
    return out


ANCHOR_FNS = {
    "ort-static defaults": (anchor_ort_static, "onnxruntime"),
    "ort-dynamic defaults": (anchor_ort_dynamic, "onnxruntime"),
    "nncf defaults": (anchor_nncf, "openvino"),
}


def run_anchor(name: str, folder: Path, work: Path, n: int) -> dict[str, Any]:
    fn, runtime = ANCHOR_FNS[name]
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = fn(folder, work, n)
    except Exception as exc:
        message = " ⏎ ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
        return {"result": "failed", "why": f"{type(exc).__name__}: {message}"[:600], "compile_s": 0.0}
    cell: dict[str, Any] = {"result": "built", "compile_s": round(time.perf_counter() - start, 1)}
    return cell | evaluate_anchor(folder, path, runtime)


def evaluate_anchor(folder: Path, path: Path, runtime: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"path": str(path), "runtime": runtime}
    try:
        cell["session"] = open_runner(runtime, path)
        cell["task"] = task_checks.run_check(folder, cell["session"].run)
    except Exception as exc:
        cell["task"] = {"error": f"{type(exc).__name__}: {exc}"[:400]}
    return cell


# --- timing ------------------------------------------------------------------------------------------------------


def time_model(folder: Path, cells: dict[str, dict[str, Any]], seconds: float) -> None:
    """One interleaved run: ORT FP32 on the source and every session a cell opened; speed = fp32 p50 / p50."""
    from edgeml.runtimes import open_session
    from edgeml.timing import interleaved_latency

    meta = corpus.load_meta(folder)
    sample = task_checks._feed(meta, {k: a[:1] for k, a in corpus.load_samples(folder, "eval").items()}, 0)
    sessions = {FP32: open_session("onnxruntime", folder / "reference.onnx", threads=1)}
    sessions |= {k: c["session"] for k, c in cells.items() if c.get("session") is not None}
    feeds = {k: sample for k in sessions}
    usable = {}
    for k, s in sessions.items():
        try:
            s.run(sample)
            usable[k] = s
        except Exception as exc:
            cells.setdefault(k, {})["timing_error"] = f"{type(exc).__name__}: {exc}"[:300]
    stats = interleaved_latency(usable, feeds, warmup=5, min_rounds=20, max_seconds=seconds)
    base = stats[FP32].p50_ms
    for k, s in stats.items():
        if k != FP32:
            cells[k]["p50_ms"], cells[k]["speed_vs_fp32"] = round(s.p50_ms, 4), round(base / s.p50_ms, 3)
    cells.setdefault("_fp32", {})["p50_ms"] = round(base, 4)


# --- the run -------------------------------------------------------------------------------------------------------


def bench_model(name: str, targets: list[str], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    entry = corpus.ENTRIES[name]
    try:
        folder = corpus.build(name, args.cache)
    except (Exception, SystemExit) as exc:
        return {"model": name, "build_error": f"{type(exc).__name__}: {exc}"[:400]}
    cells: dict[str, dict[str, Any]] = {}
    for target in targets:
        cells[target] = bench_cell(entry, folder, target, args, work)
        print(f"  {name:18s} {target:14s} {cell_line(cells[target])}", flush=True)
    if not args.no_anchors and not entry.source.endswith(".jit"):  # the JIT's float twin has its own row
        for anchor in ANCHORS:
            cells[anchor] = run_anchor(anchor, folder, work / f"{name}-anchors", 32 if args.quick else 128)
            print(f"  {name:18s} {anchor:20s} {cell_line(cells[anchor])}", flush=True)
    try:
        time_model(folder, cells, 1.0 if args.quick else 3.0)
    except Exception as exc:
        cells.setdefault("_fp32", {})["timing_error"] = f"{type(exc).__name__}: {exc}"[:300]
    for cell in cells.values():
        cell.pop("session", None)
    return {"model": name, "family": entry.family, "wheel": entry.wheel, "note": entry.note, "cells": cells}


def reevaluate(result: dict[str, Any], args: argparse.Namespace, work_dirs: list[Path]) -> dict[str, Any]:
    """Re-run the task checks and the interleaved timing on the artifacts a kept run left (no compiles)."""
    name = result["model"]
    folder = corpus.build(name, args.cache)
    cells = result.get("cells", {})
    for key, cell in cells.items():
        if cell.get("result") == "shipped" and cell.get("out") and Path(cell["out"]).exists():
            fresh = evaluate_artifact(folder, Path(cell["out"]), key)
            cell.update(fresh)
        elif cell.get("result") == "built":
            file = {"ort-static defaults": "ort_static.onnx", "ort-dynamic defaults": "ort_dynamic.onnx"}
            found = [w / f"{name}-anchors" / file.get(key, "nncf.xml") for w in work_dirs]
            path = next((p for p in found if p.exists()), None)
            if path is not None:
                cell.update(evaluate_anchor(folder, path, ANCHOR_FNS[key][1]))
    try:
        time_model(folder, cells, 1.0 if args.quick else 3.0)
    except Exception as exc:
        cells.setdefault("_fp32", {})["timing_error"] = f"{type(exc).__name__}: {exc}"[:300]
    for cell in cells.values():
        cell.pop("session", None)
    return result


def bench_cell(entry: corpus.Entry, folder: Path, target: str, args: argparse.Namespace, work: Path) -> dict:
    out = work / f"{entry.name}-{target}"
    cmd = compile_cmd(entry, folder, target, out, args.quick)
    if cmd is None:
        return {"result": "n/a", "why": "target starts from PyTorch; this model's source is ONNX"}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["EDGEML_CACHE_DIR"] = str(work / "cache" / f"{entry.name}-{target}")  # fresh: compile time is honest
    env["EDGEML_CONFIG_DIR"] = str(work / "config")
    (work / "logs").mkdir(parents=True, exist_ok=True)
    child = run_child(cmd, env, args.timeout, work / "logs" / f"{entry.name}-{target}")
    cell = {**classify(child), "compile_s": child["compile_s"], "peak_rss_mb": child["peak_rss_mb"]}
    cell["command"] = "edgeml " + shlex.join(cmd[4:]).replace(str(folder), "$CORPUS/" + entry.name)
    if cell["result"] == "shipped":
        cell |= evaluate_artifact(folder, out, target)
    return cell


def cell_line(cell: dict[str, Any]) -> str:
    task = cell.get("task") or {}
    agree = f" agree {task['agree']:.3f}" if isinstance(task.get("agree"), float) else ""
    extra = cell.get("precision") or cell.get("why", "")
    return f"{cell['result']}: {extra}{agree} ({cell.get('compile_s', 0)} s)"[:300]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ORDER))
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--quick", action="store_true", help="32 calibration samples, shorter timing")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, dest="json_out")
    parser.add_argument("--markdown", type=Path, default=None, help=f"write the table (e.g. {DEFAULT_MD})")
    parser.add_argument("--cache", type=Path, default=None, help="corpus cache (default: examples/corpus's)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per compile (900; --quick: 420)")
    parser.add_argument("--no-anchors", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (artifacts, logs)")
    parser.add_argument("--merge", action="store_true", help="replace only these models' rows in --json's file")
    parser.add_argument(
        "--reevaluate", type=Path, nargs="*", default=None, metavar="WORK_DIR",
        help="no compiles: re-run task checks and timing of --json's results on artifacts kept (--keep) in WORK_DIRs",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.timeout = args.timeout or (420.0 if args.quick else 900.0)
    if args.reevaluate is not None:
        doc = json.loads(args.json_out.read_text())
        start = time.perf_counter()
        models = args.models.split(",")
        for result in doc["results"]:
            if result["model"] in models and "cells" in result:
                print(result["model"], flush=True)
                reevaluate(result, args, args.reevaluate)
        args.argv_note = doc.get("argv")
        _write(args, doc["results"], start - doc.get("wall_s", 0.0))
        return 0
    work = Path(tempfile.mkdtemp(prefix="edgeml-bench-models-"))
    results: list[dict[str, Any]] = []
    if args.merge and args.json_out.exists():
        previous = json.loads(args.json_out.read_text())
        results = [r for r in previous["results"] if r["model"] not in args.models.split(",")]
    start = time.perf_counter()
    for name in args.models.split(","):
        print(name, flush=True)
        try:
            results.append(bench_model(name, args.targets.split(","), args, work))
        except Exception:
            results.append({"model": name, "bench_error": traceback.format_exc()[-800:]})
        _write(args, results, start)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work folder kept: {work}")
    return 0


def _write(args: argparse.Namespace, results: list[dict[str, Any]], start: float) -> None:
    from bench_models_report import environment, markdown

    argv = getattr(args, "argv_note", None) or sys.argv[1:]
    doc = {"environment": environment(), "argv": argv, "quick": args.quick, "results": results}
    doc["wall_s"] = round(time.perf_counter() - start, 1)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(doc, existing=args.markdown))


if __name__ == "__main__":
    raise SystemExit(main())

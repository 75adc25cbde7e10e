"""Accuracy-aware compression on cpu-ort, cpu-openvino and tflite-cpu: pruning, INT8 and per-layer float
fallback vs NNCF, in one run.

For the digits CNN (`build`), the wide digits CNN (`build_wide`), both PyTorch factories:

  fp32                 edgeml --precision fp32 (the reference every other row is compared with)
  int8                 edgeml --precision int8-static
  pruned30 / pruned50  edgeml --prune channels:0.3 / 0.5 --finetune train.npz (distillation), fp32
  pruned30+int8        edgeml --prune channels:0.3 --finetune train.npz --precision int8-static
  mixed@FLOOR          edgeml --precision int8-mixed --min-cosine FLOOR (eval data without labels)
  nncf-int8            nncf.quantize(fp32 ONNX, calib), ONNX backend, defaults: NNCF's all-INT8 starting point
  nncf-aac@FLOOR       nncf.quantize_with_accuracy_control(fp32 ONNX, calib, eval, validation_fn=mean cosine vs
                       fp32, max_drop=1-FLOOR, ABSOLUTE), ONNX backend, defaults otherwise
  ov-fp32              edgeml cpu-openvino --precision fp32 (FP32 IR: the OpenVINO rows' speed reference)
  ov-int8              edgeml cpu-openvino --precision int8 (nncf.quantize, performance preset, CPU device)
  ov-mixed@FLOOR       edgeml cpu-openvino --precision int8-mixed --min-cosine FLOOR (eval data without labels)
  ov-nncf-aac@FLOOR    nncf.quantize_with_accuracy_control on the OpenVINO model (ov.convert_model of the fp32
                       ONNX), the same validation_fn and max_drop, and ov-int8's quantization settings
  tflite-fp32          edgeml tflite-cpu --precision fp32 (the LiteRT rows' speed reference)
  tflite-int8          edgeml tflite-cpu --precision int8 (litert-torch PT2E full INT8)
  tflite-mixed@FLOOR   edgeml tflite-cpu --precision int8-mixed --min-cosine FLOOR (layers are module paths)

For all-MiniLM-L6-v2 (examples/minilm/prepare.py's model.onnx, calib.npz, eval.npz; no labels):

  fp32                 edgeml --precision fp32
  auto                 edgeml with its defaults (cosine ≥ 0.99, every channel ≥ 0.9): int8-dynamic on a transformer
  int8-static          edgeml --precision int8-static, budget loosened to show why auto never tries it
  pruned30             edgeml --prune channels:0.3 --finetune calib.npz (distillation) on the factory
                       examples.minilm.minilm:build, fp32, budget loosened
  mixed@FLOOR          edgeml --precision int8-mixed --min-cosine FLOOR
  ov-fp32, ov-int8     edgeml cpu-openvino fp32 / int8 (NNCF, mixed preset, transformer model type: what auto ships)
  ov-mixed@FLOOR       edgeml cpu-openvino --precision int8-mixed --min-cosine FLOOR
  ov-nncf-aac@FLOOR    NNCF accuracy control on ov.convert_model(model.onnx), ov-int8's settings

The budget is a fidelity floor (mean per-sample cosine vs fp32 on eval.npz), the same metric on both sides:
all-INT8 digits models lose no top-1 accuracy on the 400 eval samples, so a labelled budget would not
separate anything, and MiniLM's embeddings have no labels. All rows of a model are timed in one interleaved
loop (edgeml.timing, 1 thread, one eval sample per call; ONNX Runtime CPU for the ONNX rows, the OpenVINO CPU
plugin for the ov- rows, the LiteRT interpreter for the tflite- rows, each row's speedup against the fp32 row of
its own runtime); accuracy is top-1 on
eval.npz's labels where it has them. A row that fails records its error and time to failure, not a gap.

    python benchmarks/bench_accuracy.py [--models minilm] [--out benchmarks/results/accuracy.json]

With --models, the other models' results already in --out are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"
MINILM = ROOT / "examples" / "minilm" / "build"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "accuracy.json"
LOOSE = dict(min_cosine=0.0, min_channel_cosine=-1.0)  # a row built to show its numbers, whatever they are


@dataclass(frozen=True)
class Suite:
    """One model's benchmark: its source, data folder (calib.npz, eval.npz), floors and rows."""

    source: str
    data: Path
    floors: tuple[float, ...]
    seconds: float  # interleaved timing
    variants: Callable[[Suite, Path], dict[str, dict[str, Any]]]  # (suite, unlabelled eval) → edgeml rows
    nncf_onnx: bool  # NNCF's ONNX-backend rows (plain quantize, accuracy control)
    ov_settings: dict[str, str | None]  # NNCF OpenVINO accuracy control: ov-int8's preset and model type


def digits_variants(suite: Suite, unlabelled: Path) -> dict[str, dict[str, Any]]:
    prune = dict(finetune=suite.data / "train.npz", max_drop=100.0, min_channel_cosine=-1.0)
    return (
        {
            "fp32": dict(options={"precision": "fp32"}),
            "int8": dict(options={"precision": "int8-static"}),
            "pruned30": dict(prune="channels:0.3", options={"precision": "fp32"}, **prune),
            "pruned50": dict(prune="channels:0.5", options={"precision": "fp32"}, **prune),
            "pruned30+int8": dict(prune="channels:0.3", options={"precision": "int8-static"}, **prune),
        }
        | _mixed_and_openvino(suite, unlabelled)
        | _tflite(suite, unlabelled)
    )


def minilm_variants(suite: Suite, unlabelled: Path) -> dict[str, dict[str, Any]]:
    prune = dict(source="examples.minilm.minilm:build", prune="channels:0.3", finetune=suite.data / "calib.npz")
    return {
        "fp32": dict(options={"precision": "fp32"}),
        "auto": dict(),
        "int8-static": dict(options={"precision": "int8-static"}, **LOOSE),
        "pruned30": dict(options={"precision": "fp32"}, **prune, **LOOSE),
    } | _mixed_and_openvino(suite, unlabelled)


def _mixed_and_openvino(suite: Suite, unlabelled: Path) -> dict[str, dict[str, Any]]:
    mixed = dict(options={"precision": "int8-mixed"}, eval_data=unlabelled)
    rows = {f"mixed@{f}": dict(mixed, min_cosine=f) for f in suite.floors}
    rows["ov-fp32"] = dict(target="cpu-openvino", options={"precision": "fp32"})
    rows["ov-int8"] = dict(target="cpu-openvino", options={"precision": "int8"})
    rows |= {f"ov-mixed@{f}": dict(mixed, target="cpu-openvino", min_cosine=f) for f in suite.floors}
    return rows


def _tflite(suite: Suite, unlabelled: Path) -> dict[str, dict[str, Any]]:
    """tflite-cpu from the PyTorch source: its fp32 and full-INT8 candidates and int8-mixed at each floor."""
    rows = {
        "tflite-fp32": dict(target="tflite-cpu", options={"precision": "fp32"}),
        "tflite-int8": dict(target="tflite-cpu", options={"precision": "int8"}),
    }
    mixed = dict(target="tflite-cpu", options={"precision": "int8-mixed"}, eval_data=unlabelled)
    return rows | {f"tflite-mixed@{f}": dict(mixed, min_cosine=f) for f in suite.floors}


SUITES = {
    "digits": Suite("examples.digits.digits_cnn:build", DIGITS, (0.9999, 0.99998), 6.0, digits_variants, True,
                    {"preset": "performance", "model_type": None}),
    "digits_wide": Suite("examples.digits.digits_cnn:build_wide", DIGITS, (0.9999, 0.99998), 6.0, digits_variants,
                         True, {"preset": "performance", "model_type": None}),
    # NOTE: floors above both all-INT8 results (cpu-ort int8-dynamic 0.993, cpu-openvino int8 0.9976)
    "minilm": Suite(str(MINILM / "model.onnx"), MINILM, (0.998, 0.999), 20.0, minilm_variants, False,
                    {"preset": "mixed", "model_type": "transformer"}),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--models", nargs="+", choices=list(SUITES), default=list(SUITES))
    parser.add_argument("--seconds", type=float, help="interleaved timing per model (default: 6 s, MiniLM 20 s)")
    args = parser.parse_args()
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    logging.disable(logging.WARNING)
    results = _previous(args.out, args.models)
    results["host"] = _host()
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        for name in args.models:
            suite = SUITES[name]
            if name == "minilm":
                _prepare_minilm()
            print(f"== {name}", flush=True)
            started = time.perf_counter()
            rows = bench_model(suite, Path(tmp) / name, args.seconds or suite.seconds)
            results["floors"][name] = list(suite.floors)
            results["models"][name] = rows
            results["seconds"][name] = round(time.perf_counter() - started, 1)
    results["models"] = {k: results["models"][k] for k in SUITES if k in results["models"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print_table(results, args.models)
    print(f"wrote {args.out}")


def _previous(out: Path, models: list[str]) -> dict[str, Any]:
    """The results already in `out` for the models not rerun (floors: one list per model)."""
    fresh: dict[str, Any] = {"floors": {}, "models": {}, "seconds": {}}
    if set(models) == set(SUITES) or not out.exists():
        return fresh
    old = json.loads(out.read_text())
    kept = {k: v for k, v in old.get("models", {}).items() if k not in models}
    floors = old.get("floors", {})
    floors = floors if isinstance(floors, dict) else {k: floors for k in kept}  # older files: one list for all
    seconds = old.get("seconds", {})
    return {"floors": {k: floors[k] for k in kept if k in floors}, "models": kept,
            "seconds": {k: seconds[k] for k in kept if k in seconds}}  # fmt: skip


def _prepare_minilm() -> None:
    """examples/minilm/build/ (model.onnx, calib.npz, eval.npz): ~15 s the first time, then up to date."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("minilm_prepare", ROOT / "examples" / "minilm" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.prepare(quiet=True)


def bench_model(suite: Suite, work: Path, seconds: float) -> dict[str, Any]:
    from edgeml.artifact import create_keypair

    work.mkdir(parents=True)
    key = create_keypair(work / "keys")[0]
    common = dict(calib=suite.data / "calib.npz", eval_data=suite.data / "eval.npz", key=key, cache_dir=work / "cache")
    variants = suite.variants(suite, _unlabelled(suite, work))
    rows = {label: build_row(suite, label, kw, work, common) for label, kw in variants.items()}
    reference = work / "fp32" / "model.onnx"
    float_onnx = Path(suite.source) if suite.source.endswith(".onnx") else reference  # what both sides start from
    nncf_rows: dict[str, Callable[[], dict[str, Any]]] = {}
    if suite.nncf_onnx:
        nncf_rows["nncf-int8"] = partial(nncf_quantize, suite, reference, work / "nncf-int8.onnx")
        for f in suite.floors:
            nncf_rows[f"nncf-aac@{f}"] = partial(nncf_accuracy_control, suite, reference, work / f"nncf-{f}.onnx", f)
    for f in suite.floors:
        nncf_rows[f"ov-nncf-aac@{f}"] = partial(nncf_openvino_accuracy_control, suite, float_onnx, work / f"ov-{f}", f)
    rows |= {label: _nncf_row(label, build) for label, build in nncf_rows.items()}
    measure_rows(rows, suite, seconds)
    return rows


def _unlabelled(suite: Suite, work: Path) -> Path:
    """eval.npz without its labels (int8-mixed then judges fidelity, not accuracy): a copy where it has any."""
    evaluation = suite.data / "eval.npz"
    with np.load(evaluation) as z:
        if "labels" not in z.files:
            return evaluation
        np.savez(work / "eval_unlabelled.npz", **{k: z[k] for k in z.files if k != "labels"})
    return work / "eval_unlabelled.npz"


def build_row(suite: Suite, label: str, kw: dict[str, Any], work: Path, common: dict[str, Any]) -> dict[str, Any]:
    """One edgeml compile; a failure becomes the row's error (uncaught: an exception edgeml did not wrap)."""
    import edgeml

    kw = dict(kw)
    target, source = kw.pop("target", "cpu-ort"), kw.pop("source", suite.source)
    started = time.perf_counter()
    try:
        result = edgeml.compile(source, target, out=work / label, **(common | kw))
    except Exception as exc:  # every failure is a result of this benchmark
        seconds = round(time.perf_counter() - started, 2)
        error = exc.message if isinstance(exc, edgeml.EdgemlError) else f"{type(exc).__name__}: {exc}"
        print(f"  {label}: failed after {seconds} s: {error[:300]}", flush=True)
        return {"error": error, "build_seconds": seconds} | (
            {} if isinstance(exc, edgeml.EdgemlError) else {"uncaught": True}
        )
    search = result.decision.mixed_precision or {}
    row = {
        "model": str(work / label / result.manifest["target"]["model_file"]),
        "runtime": result.manifest["target"]["runtime"],
        "precision": result.decision.chosen,
        "build_seconds": round(time.perf_counter() - started, 2),
        "layers_in_float": search.get("keep_float"),
        "pruning": (result.manifest.get("pruning") or {}).get("note"),
    }
    if search.get("seconds") is not None:
        row["search"] = {"seconds": search["seconds"], "tries": len(search.get("tries", ())),
                         "ranked": len(search.get("ranking", ())), "summary": search.get("summary")}  # fmt: skip
    print(f"  {label}: {row['precision']}, built in {row['build_seconds']} s", flush=True)
    return row


def _nncf_row(label: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        row = build()
    except Exception as exc:  # every failure is a result of this benchmark
        seconds = round(time.perf_counter() - started, 2)
        print(f"  {label}: failed after {seconds} s: {type(exc).__name__}: {exc}"[:300], flush=True)
        return {"error": f"{type(exc).__name__}: {exc}", "build_seconds": seconds}
    print(f"  {label}: built in {row['build_seconds']} s", flush=True)
    return row


def nncf_quantize(suite: Suite, reference: Path, out: Path) -> dict[str, Any]:
    """Plain nncf.quantize, defaults: the starting point NNCF's accuracy control works from."""
    import nncf
    import onnx

    model = onnx.load(reference)
    calib = _feeds(suite.data / "calib.npz", _input_names(model))
    started = time.perf_counter()
    with _quiet():
        quantized = nncf.quantize(model, nncf.Dataset(calib), subset_size=len(calib))
    onnx.save(quantized, out)
    seconds = round(time.perf_counter() - started, 2)
    return {"model": str(out), "build_seconds": seconds, "layers_in_float": _nncf_float_layers(quantized)}


def nncf_accuracy_control(suite: Suite, reference: Path, out: Path, floor: float) -> dict[str, Any]:
    import nncf
    import onnx
    import onnxruntime as ort

    model = onnx.load(reference)
    calib, evaluation = (_feeds(suite.data / f, _input_names(model)) for f in ("calib.npz", "eval.npz"))
    ref = _reference_outputs(reference, evaluation)

    def validate(candidate: Any, data: Any) -> tuple[float, list[float]]:
        session = ort.InferenceSession(candidate.SerializeToString(), providers=["CPUExecutionProvider"])
        return _mean_cosine(ref, [session.run(None, item)[0] for item in data])

    started = time.perf_counter()
    with _quiet():
        quantized = nncf.quantize_with_accuracy_control(
            model, nncf.Dataset(calib), nncf.Dataset(evaluation), validate,
            max_drop=round(1.0 - floor, 8), drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calib),
        )  # fmt: skip
    seconds = time.perf_counter() - started
    onnx.save(quantized, out)
    return {"model": str(out), "build_seconds": round(seconds, 2), "layers_in_float": _nncf_float_layers(quantized)}


def nncf_openvino_accuracy_control(suite: Suite, float_onnx: Path, out: Path, floor: float) -> dict[str, Any]:
    """NNCF's own accuracy-aware loop on the OpenVINO backend, at ov-int8's quantization settings."""
    import nncf
    import onnx
    import openvino as ov

    proto = onnx.load(float_onnx)
    calib, evaluation = (_feeds(suite.data / f, _input_names(proto)) for f in ("calib.npz", "eval.npz"))
    ref = _reference_outputs(float_onnx, evaluation)

    def validate(compiled: Any, data: Any) -> tuple[float, list[float]]:
        return _mean_cosine(ref, [compiled(item)[0] for item in data])

    settings = suite.ov_settings
    model_type = settings["model_type"]
    started = time.perf_counter()
    with _quiet():
        quantized = nncf.quantize_with_accuracy_control(
            ov.convert_model(str(float_onnx)), nncf.Dataset(calib), nncf.Dataset(evaluation), validate,
            max_drop=round(1.0 - floor, 8), drop_type=nncf.DropType.ABSOLUTE,
            preset=nncf.QuantizationPreset(settings["preset"]),
            model_type=nncf.ModelType(model_type) if model_type else None,
            target_device=nncf.TargetDevice.CPU, subset_size=len(calib),
        )  # fmt: skip
    seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, out / "model.xml", compress_to_fp16=False)
    float_layers = _ov_float_layers(out / "model.xml", proto)
    return {"model": str(out / "model.xml"), "runtime": "openvino", "build_seconds": round(seconds, 2),
            "layers_in_float": float_layers} | _nncf_ops_left(quantized)  # fmt: skip


def _nncf_ops_left(model: Any) -> dict[str, int]:
    """What NNCF left in the IR it returned: quantizers, and SmoothQuant's activation scales (transformers)."""
    ops = list(model.get_ops())
    return {
        "fake_quantize_ops": sum(op.get_type_name() == "FakeQuantize" for op in ops),
        "smooth_quant_scales": sum(op.get_friendly_name().endswith("/nncf_smooth_quant") for op in ops),
    }


@contextlib.contextmanager
def _quiet() -> Any:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _ov_float_layers(xml: Path, float_onnx: Any) -> list[str]:
    """The Conv/Gemm/MatMul nodes of the float ONNX that the quantized IR does not run in INT8."""
    from edgeml.compiler.ir_quantized_layers import ir_quantized_layers

    layers = ir_quantized_layers(xml.read_bytes(), xml.with_suffix(".bin").read_bytes(), float_onnx)
    quantized = {la.name for la in layers}
    weighted = [n.name for n in float_onnx.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    return [name for name in weighted if name not in quantized]


def _nncf_float_layers(model: Any) -> list[str]:
    """Conv/Gemm/MatMul nodes whose weight input does not come through a DequantizeLinear."""
    producers = {o: n for n in model.graph.node for o in n.output}
    found = []
    for n in model.graph.node:
        if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1:
            weight = producers.get(n.input[1])
            if weight is None or weight.op_type != "DequantizeLinear":
                found.append(n.name)
    return found


def measure_rows(rows: dict[str, dict[str, Any]], suite: Suite, seconds: float) -> None:
    """Size, interleaved latency, accuracy (where eval.npz has labels) and mean cosine vs fp32, per built row."""
    from edgeml.runtimes import open_session
    from edgeml.timing import interleaved_latency

    ok = {k: r for k, r in rows.items() if "model" in r}
    sessions = {k: open_session(r.get("runtime", "onnxruntime"), r["model"]) for k, r in ok.items()}
    samples = _feeds(suite.data / "eval.npz", [t.name for t in sessions["fp32"].signature.inputs])
    with np.load(suite.data / "eval.npz") as z:
        labels = z["labels"] if "labels" in z.files else None
    outputs = {k: np.concatenate([s.run(x)[next(iter(s.signature.outputs)).name] for x in samples])
               for k, s in sessions.items()}  # fmt: skip
    latency = interleaved_latency(sessions, {k: samples[0] for k in sessions}, max_seconds=seconds)
    for k, r in ok.items():
        runtime = r.pop("runtime", "onnxruntime")
        ref_p50 = latency[{"openvino": "ov-fp32", "litert": "tflite-fp32"}.get(runtime, "fp32")].p50_ms
        accuracy = None if labels is None else round(float((outputs[k].argmax(1) == labels).mean() * 100), 2)
        r |= {
            "runtime": runtime,
            "size_bytes": _size(Path(r["model"])),
            "p50_ms": round(latency[k].p50_ms, 4),
            "speedup_vs_fp32": round(ref_p50 / latency[k].p50_ms, 3),
            "accuracy": accuracy,
            "cosine": round(float(_cosines(outputs["fp32"], outputs[k]).mean()), 7),
        }
        del r["model"]


def _size(model: Path) -> int:
    """The model file, and an IR's weights beside it."""
    weights = model.with_suffix(".bin")
    return model.stat().st_size + (weights.stat().st_size if model.suffix == ".xml" and weights.exists() else 0)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _mean_cosine(ref: np.ndarray, outs: list[np.ndarray]) -> tuple[float, list[float]]:
    """NNCF's validation_fn result: the mean per-sample cosine vs the float outputs, and the per-sample values."""
    per_sample = _cosines(ref[: len(outs)], np.concatenate(outs))
    return float(per_sample.mean()), [float(c) for c in per_sample]


def _reference_outputs(model: Path, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, item)[0] for item in feeds])


def _input_names(model: Any) -> list[str]:
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def _feeds(path: Path, names: list[str]) -> list[dict[str, np.ndarray]]:
    """One feed per sample (batch 1), keyed by the model's input names (a lone input takes the lone array)."""
    with np.load(path) as z:
        arrays = {k: np.ascontiguousarray(z[k]) for k in z.files if k != "labels"}
    if set(arrays) != set(names) and len(arrays) == len(names) == 1:
        arrays = {names[0]: next(iter(arrays.values()))}
    n = len(next(iter(arrays.values())))
    return [{k: a[i : i + 1] for k, a in arrays.items()} for i in range(n)]


def _host() -> dict[str, Any]:
    from importlib import metadata

    from edgeml.host import host_info

    tools = {t: metadata.version(t) for t in ("onnxruntime", "openvino", "nncf", "torch", "torch-pruning")}
    return host_info().to_dict() | {"python": platform.python_version(), "tools": tools}


def print_table(results: dict[str, Any], models: list[str]) -> None:
    for model in models:
        print(f"\n{model}")
        print(f"{'variant':22} {'size KiB':>9} {'p50 ms':>8} {'vs fp32':>8} {'acc %':>6} {'cosine':>10}  float layers")
        for k, r in results["models"][model].items():
            if "error" in r:
                print(f"{k:22} error after {r['build_seconds']} s: {r['error'][:200]}")
                continue
            kept = r.get("layers_in_float")
            kept_text = "" if kept is None else f"{len(kept)} {kept}"[:200]
            acc = "—" if r["accuracy"] is None else f"{r['accuracy']:.2f}"
            print(f"{k:22} {r['size_bytes'] / 1024:9.1f} {r['p50_ms']:8.4f} {r['speedup_vs_fp32']:7.2f}× "
                  f"{acc:>6} {r['cosine']:10.7f}  {kept_text}")  # fmt: skip


if __name__ == "__main__":
    main()

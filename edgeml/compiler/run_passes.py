"""ONNX bytes + passes → ONNX bytes, each pass cached by content and reported as it runs."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgeml.compiler.content_cache import Blob, ContentCache, cache_key
from edgeml.compiler.passes.base import Pass, PassContext
from edgeml.compiler.progress import Progress
from edgeml.compiler.tool_versions import tool_versions

__all__ = ["PassRecord", "run_passes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassRecord:
    name: str
    config: dict[str, Any]
    changed: bool
    cached: bool
    seconds: float
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": self.config,
            "changed": self.changed,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }


def run_passes(
    model: Blob,
    passes: Sequence[Pass],
    ctx: PassContext,
    cache: ContentCache,
    progress: Progress,
    calibration_digest: str | None,
    label: str = "",
) -> tuple[Blob, list[PassRecord]]:
    records = []
    for p in passes:
        model, record = _run_one(model, p, ctx, cache, progress, calibration_digest, label)
        records.append(record)
    return model, records


def _run_one(model: Blob, p, ctx, cache, progress, calibration_digest, label) -> tuple[Blob, PassRecord]:
    key = cache_key(
        input=model.sha256,
        name=p.name,
        config=p.config.to_dict(),
        calibration=calibration_digest if p.uses_calibration else None,
        tools=tool_versions(p.tools),
    )
    step = f"{label}{p.name}"
    progress.step(step)
    start = time.perf_counter()
    cached = cache.get_bytes("passes", key)
    if cached is not None:
        meta = cache.get_json("passes", key) or {}
        record = PassRecord(
            p.name,
            p.config.to_dict(),
            meta.get("changed", True),
            True,
            time.perf_counter() - start,
            tuple(meta.get("notes", ())),
        )
        progress.finished(step, "cached")
        return cached, record
    result = p(model.data, ctx)
    seconds = time.perf_counter() - start
    out = model if not result.changed else Blob.of(result.model)
    cache.put_bytes("passes", key, out, {"changed": result.changed, "notes": list(result.notes)})
    log.info("pass %s: changed=%s in %.2fs", p.name, result.changed, seconds)
    progress.finished(step, f"{seconds:.1f} s" + ("" if result.changed else ", no change"))
    return out, PassRecord(p.name, p.config.to_dict(), result.changed, False, seconds, result.notes)

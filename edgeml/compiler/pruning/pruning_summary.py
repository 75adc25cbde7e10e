"""A pruning record + the compile's measurements → before/after: MACs, parameters, attention heads, host latency,
accuracy, and what the change buys on this target, said plainly (unstructured sparsity: a smaller zip, no speed;
a transformer: how many heads each attention layer lost)."""

from __future__ import annotations

import zlib
from collections import Counter
from typing import Any

from edgeml.compiler.measure import FLOAT

__all__ = ["pruning_rows", "pruning_summary", "recovery_line"]


def pruning_summary(report: dict[str, Any], models: dict[str, dict[str, Any]], unpruned: bytes, pruned: bytes | None):
    out = dict(report)
    before, after = models[FLOAT], models.get("fp32")
    out["measured"] = {"before": _row(before), "after": _row(after) if after else None}
    if report.get("kept_unpruned"):
        out["note"] = f"not pruned: {report['recovery']['error']}; the un-pruned model went through the pipeline"
        return out
    if report["method"].startswith("magnitude") and pruned is not None:
        zipped = {"before": _deflated(unpruned), "after": _deflated(pruned)}
        out["compressed_bytes"] = zipped
        out["note"] = (
            f"{100 * report['sparsity']['weights']:.0f}% of the weights are zero, but ONNX Runtime's CPU provider "
            f"computes them like any other value: no speedup{_latency(before, after)}. The compressed (zipped) "
            f"float model shrinks {zipped['before'] / 1024:.1f} → {zipped['after'] / 1024:.1f} KiB"
        )
    else:
        b, a = report["before"], report["after"]
        share = f"{a['macs'] / b['macs']:.0%} of the MACs, " if b.get("macs") and a.get("macs") else ""
        params = f"{a['params'] / b['params']:.0%} of the parameters"
        budget = report.get("mac_budget")
        found = f"MAC budget {budget['share']:.0%}: {budget['ratio']:.1%} of the channels removed; " if budget else ""
        out["note"] = f"{found}{_heads(report)}{share}{params}{_latency(before, after)}"
    return out


def _heads(report: dict[str, Any]) -> str:
    """'4 of 12 heads removed in each of 6 attention layers (head size kept; ...); ...' or '' without attention."""
    heads, kept = report.get("heads") or {}, report.get("heads_kept") or {}
    if not heads and not kept:
        return ""
    parts = [
        f"{b - a} of {b} heads removed in {'each of ' if n > 1 else ''}{n} attention layer{'s' if n > 1 else ''}"
        for (b, a), n in Counter(tuple(v) for v in heads.values()).items()
    ]
    if heads:
        on_data = "activation" in report.get("importance", "")
        ranked = "by their output on the calibration data" if on_data else "by weight"
        parts[-1] += f" (head size kept; heads and channels ranked {ranked})"
    if kept:
        reason = next(iter(kept.values()))
        parts.append(f"{len(kept)} attention layer{'s' if len(kept) > 1 else ''} keep their heads ({reason})")
    return "; ".join(parts) + "; the residual stream (hidden size) keeps its width; "


def _row(m: dict[str, Any]) -> dict[str, Any]:
    return {"latency_p50_ms": m["latency"]["p50_ms"], "accuracy": m["accuracy"], "size_bytes": m["size_bytes"]}


def _latency(before: dict[str, Any], after: dict[str, Any] | None) -> str:
    if after is None:
        return ""
    b, a = before["latency"]["p50_ms"], after["latency"]["p50_ms"]
    return f" (float p50 {b:.3f} → {a:.3f} ms on this host, {b / a:.2f}×)"


def _deflated(data: bytes) -> int:
    return len(zlib.compress(data, 9))


def pruning_rows(p: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(what, before, after) lines of a summary, for tables: MACs, parameters, host latency, accuracy, zip size."""
    b, a = p["before"], p.get("after") or {}
    rows = []
    if b.get("macs") and a.get("macs"):
        rows.append(("MACs", f"{b['macs'] / 1e6:.2f} M", f"{a['macs'] / 1e6:.2f} M"))
    rows.append(("parameters", f"{b['params']:,}", f"{a['params']:,}" if a else "—"))
    if p.get("heads") and a:  # NOTE: no "after" when the un-pruned model was kept
        rows.append(("attention heads", *(str(sum(h[i] for h in p["heads"].values())) for i in (0, 1))))
    rows.append(("non-zero parameters", f"{b['nonzero_params']:,}", f"{a['nonzero_params']:,}" if a else "—"))
    mb, ma = (p.get("measured") or {}).get("before"), (p.get("measured") or {}).get("after")
    if mb and ma:
        rows.append(("float p50 ms (this host)", f"{mb['latency_p50_ms']:.3f}", f"{ma['latency_p50_ms']:.3f}"))
        if mb["accuracy"] is not None:
            rows.append(("float accuracy", f"{mb['accuracy']:.2f}%", f"{ma['accuracy']:.2f}%"))
    if p.get("compressed_bytes"):
        z = p["compressed_bytes"]
        rows.append(("zipped float model", f"{z['before'] / 1024:.1f} KiB", f"{z['after'] / 1024:.1f} KiB"))
    return rows


def recovery_line(p: dict[str, Any]) -> str:
    r = p.get("recovery") or {}
    if r.get("kind") == "distillation":
        return (
            f"recovery: distillation from the float model, {r['epochs']} epochs on {r['samples']} samples "
            f"({r['loss']}, lr {r.get('learning_rate', r.get('lr'))}), loss {r['loss_before']} → {r['loss_after']}"
        )
    if r.get("kind") == "hook":
        return f"recovery: hook {r['hook']}" + (f" FAILED: {r['error']}" if r.get("error") else f", {r['seconds']} s")
    return f"recovery: none ({r.get('note', '')})"

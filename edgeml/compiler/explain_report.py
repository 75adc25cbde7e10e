"""What a compile tried, what shipped and why, and each quantized candidate's layers → `explain.json`.

The file travels in the artifact (listed and hashed in the manifest like every file) and `edgeml explain`
renders it. Layers are listed top offenders first: by measured sensitivity (the output SQNR a layer
recovers when kept in float) where the accuracy-aware search measured it, otherwise — marked "estimated" —
by lowest activation SQNR.
"""

from __future__ import annotations

from typing import Any

from edgeml.compiler.evaluate import cosine_text
from edgeml.compiler.layer_numerics import LayerNumerics
from edgeml.compiler.measure import FLOAT
from edgeml.compiler.select_candidate import Budget, Decision, speed_reference, worst_cosine
from edgeml.host import host_info

__all__ = [
    "EXPLAIN_FILE", "EXPLAIN_VERSION", "cosine_text", "explain_report", "fidelity_cells", "fidelity_rows", "host_line",
    "latency_line",
    "ranked_layers", "search_rows", "source_speedup", "speed_header",
]  # fmt: skip

EXPLAIN_FILE = "explain.json"
EXPLAIN_VERSION = 1


def explain_report(
    *,
    decision: Decision,
    models: dict[str, dict[str, Any]],
    budget: Budget,
    tables: dict[str, list[LayerNumerics]],
    analysis: dict[str, Any],
    pruning: dict[str, Any] | None = None,
) -> dict[str, Any]:
    search = decision.mixed_precision if decision.mixed_precision and "ranking" in decision.mixed_precision else None
    return {
        "explain_version": EXPLAIN_VERSION,
        "shipped": decision.chosen,
        "reason": decision.reason,
        "budget": budget.to_dict(),
        "float": _float_row(models[FLOAT]),
        "speed_reference": speed_reference(models),  # every `speedup` is this model's p50 / the candidate's
        "host": host_info().to_dict(),  # where every latency figure was measured (not the target device)…
        **_device_measured(models),  # …unless the candidates' were timed on a device (latency_on_device)
        "candidates": _candidates(decision, models, search),
        "sensitivity": "measured" if search else "estimated",
        "layers": {name: ranked_layers(rows, search, name) for name, rows in tables.items()},
        "mixed_precision": decision.mixed_precision,
        "pruning": pruning,
        "analysis": analysis,
    }


def ranked_layers(rows: list[LayerNumerics], search: dict[str, Any] | None, candidate: str) -> list[dict[str, Any]]:
    """Rows as dicts with `sensitivity_rank`, `gain_db` and `why`, top offenders first."""
    measured = {n: s for s in (search or {}).get("ranking", []) for n in s.get("members") or [s["layer"]]}
    kept = set((search or {}).get("keep_float") or ())
    order = sorted(
        rows, key=lambda r: (0, -measured[r.layer]["gain_db"]) if r.layer in measured else (1, r.sqnr_db)
    )  # fmt: skip
    out = []
    for rank, row in enumerate(order, start=1):
        gain = measured.get(row.layer, {}).get("gain_db")
        out.append(row.to_dict() | {"sensitivity_rank": rank, "gain_db": gain, "why": _why(row, gain, kept, search)})
    return out


def _why(row: LayerNumerics, gain: float | None, kept: set[str], search: dict[str, Any] | None) -> str:
    if row.precision == "float":
        if row.layer in kept and gain is not None:
            return f"kept in float by the accuracy-aware search: INT8 cost it {gain:+.2f} dB of output SQNR"
        return "kept in float by the accuracy-aware search" if row.layer in kept else "float"
    if row.layer in kept:
        recovers = f": float recovers {gain:+.2f} dB output SQNR" if gain is not None else ""
        return f"INT8 here; int8-mixed keeps it in float{recovers}"
    if gain is None:
        return "INT8 (default)" if search is None else "INT8: shares its input's scale or was not ranked"
    if gain <= 0:
        return f"INT8: keeping it in float does not help ({gain:+.2f} dB)"
    needed = "not needed to meet the budget" if search and search.get("found") else "the budget is out of reach"
    return f"INT8: float would recover {gain:+.2f} dB output SQNR; {needed}"


def search_rows(search: dict[str, Any]) -> list[dict[str, Any]]:
    """The accuracy-aware search's ranking (`explain.json` → `mixed_precision`) as rows for a report: rank,
    layer, op, gain_db, cosine and accuracy with only that layer in float, the precision chosen and why. The
    one view of the search on every target, per-layer numerics or not (OpenVINO IRs, TFLite have none)."""
    kept = set(search.get("keep_float") or ())
    rows = []
    for rank, s in enumerate(search.get("ranking", []), start=1):
        in_float = set(s.get("members") or [s["layer"]]) <= kept
        if in_float:
            why = "kept in float: needed to meet the budget"
        elif s["gain_db"] <= 0:
            why = "INT8: float does not help"
        else:
            why = "INT8: not needed to meet the budget" if search.get("found") else "INT8: the budget is out of reach"
        rows.append(s | {"rank": rank, "precision": "float" if in_float else "int8", "why": why})
    return rows


def fidelity_rows(explain: dict[str, Any]) -> list[dict[str, str]]:
    """One row per measured candidate and output, every fidelity figure formatted (the explain table and its
    HTML): cosine over all samples, the worst channel's, SNR, the largest absolute and relative error, and the
    decision agreement where the output is a probability (or top-1 where it holds class scores)."""
    rows = []
    for c in explain["candidates"]:
        for output, f in (c.get("fidelity") or {}).items():
            rows.append({"candidate": c["name"], "output": output} | fidelity_cells(f))
    return rows


def fidelity_cells(f: dict[str, Any]) -> dict[str, str]:
    channel = (
        f"{cosine_text(f['worst_channel_cosine'])} (ch {f['worst_channel']})" if "worst_channel_cosine" in f else "—"
    )
    if "decision_agreement" in f:
        decisions = f"{100 * f['decision_agreement']:.2f}% ({f.get('decision', '')})"
    elif "top1_agreement" in f:
        decisions = f"{100 * f['top1_agreement']:.2f}% (top-1)"
    else:
        decisions = "—"
    if "decision_agreement" in f.get("open_loop", {}):  # a stateful model: judged closed-loop
        decisions += f"; open loop {100 * f['open_loop']['decision_agreement']:.2f}%"
    rel = f.get("max_rel_err")
    return {
        "kind": f.get("kind", "—"),
        "cosine": cosine_text(f["cosine"]),
        "worst channel": channel,
        "SNR dB": f"{f['sqnr_db']:.1f}",
        "max abs err": f"{f['max_abs_err']:.3g}",
        "max rel err": "—" if rel is None else f"{100 * rel:.2f}%",
        "decisions agree": decisions,
    }


def _device_measured(models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    where = next((m["measured_on"]["latency"] for n, m in models.items() if n != FLOAT and "measured_on" in m), None)
    return {"latency_measured_on": where} if where else {}


def latency_line(host: dict[str, Any], device: dict[str, Any] | None = None) -> str:
    """Where a report's latencies were measured: the device (`--measure-on`) where given, else the build host."""
    if device is None:
        return host_line(host)
    return (
        f"candidates' latency measured on device {device['device']} ({device.get('description', '?')}, "
        f"{device.get('cpu', '?')}); accuracy and the float source's latency on the build host "
        f"({host.get('description') or host.get('arch', '?')})"
    )


def host_line(host: dict[str, Any]) -> str:
    """Where a report's latencies were measured, in one sentence (explain, its HTML, compile's output)."""
    threads = f", {host['threads']} thread(s)" if host.get("threads") else ""
    return (
        f"latency measured on the build host ({host.get('description') or host.get('arch', '?')}, "
        f"{host.get('cpu', '?')}{threads}), not on the target device: INT8 speed and numerics may differ there"
    )


def speed_header(explain: dict[str, Any]) -> str:
    """The speed column's header, naming the one model every `speedup` in the report is quoted against."""
    return "vs fp32" if _speed_reference_of(explain) == "fp32" else "vs float source"


def source_speedup(explain: dict[str, Any]) -> float:
    """The float source's figure in that column (1.0 where it is the reference)."""
    ref = _speed_reference_of(explain)
    if ref == FLOAT:
        return 1.0
    row = next(c for c in explain["candidates"] if c["name"] == ref)
    return row["latency_p50_ms"] / explain["float"]["latency_p50_ms"]


def _speed_reference_of(explain: dict[str, Any]) -> str:
    """Recorded since the report named it; before, fp32 where it was measured (as `speedup` was computed)."""
    if "speed_reference" in explain:
        return explain["speed_reference"]
    measured = {c["name"] for c in explain["candidates"] if c["latency_p50_ms"] is not None}
    return "fp32" if "fp32" in measured else FLOAT


def _float_row(m: dict[str, Any]) -> dict[str, Any]:
    return {"latency_p50_ms": m["latency"]["p50_ms"], "size_bytes": m["size_bytes"], "accuracy": m["accuracy"]}


def _candidates(decision: Decision, models: dict[str, dict[str, Any]], search) -> list[dict[str, Any]]:
    speed_ref = models[speed_reference(models)]["latency"]["p50_ms"]
    rows = []
    for name, verdict in decision.verdicts.items():
        m = models.get(name)
        row = {
            "name": name,
            "precision": _precision_mix(name, search),
            "keep_float": (search or {}).get("keep_float") if name == "int8-mixed" else None,
            "shipped": name == decision.chosen,
            "verdict": verdict,
            "latency_p50_ms": None,
            "speedup": None,
            "size_bytes": None,
            "accuracy": None,
            "worst_cosine": None,
            "fidelity": None,
        }
        if m is not None:
            row |= {
                "latency_p50_ms": m["latency"]["p50_ms"],
                "speedup": round(speed_ref / m["latency"]["p50_ms"], 3),
                "size_bytes": m["size_bytes"],
                "accuracy": m["accuracy"],
                "worst_cosine": worst_cosine(m["fidelity"]),
                "fidelity": m["fidelity"],  # per output: every figure (edgeml/compiler/evaluate.py)
            }
        rows.append(row)
    return rows


def _precision_mix(name: str, search: dict[str, Any] | None) -> str:
    if name == "int8-mixed":
        kept = (search or {}).get("keep_float")
        return "INT8, no mix found" if kept is None else f"INT8 with {len(kept)} layer(s) in float"
    return {
        "fp32": "float",
        "int8-static": "all INT8 (static)",
        "int8-dynamic": "INT8 weights, dynamic activations",
    }.get(name, name)

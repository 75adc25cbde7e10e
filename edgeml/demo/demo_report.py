"""The demo's summary → one self-contained HTML page with inline SVG plots: devices per release over time
(the rollouts), the real agent's accuracy on the traffic it served (drift, then the retrained release),
drift PSI over time, p50 latency per release, and the flow's before/after accuracy."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

__all__ = ["fleet_series", "write_report"]

_W, _H, _PAD = 640, 220, 40
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def fleet_series(fleet: Any, t0: float) -> dict[str, Any]:
    """From the fleet database: PSI per telemetry batch over time, and p50 latency per release."""
    from edgeml.drift import psi

    refs = {a["sha256"]: a for a in fleet.artifacts.all()}
    points: dict[str, list[tuple[float, float]]] = {}
    for row in fleet.db.query("SELECT received_at, artifact_sha, drift FROM telemetry ORDER BY received_at"):
        art = refs.get(row["artifact_sha"])
        counts = json.loads(row["drift"]).get("input", {}).get("0")
        if art is None or not counts:
            continue
        ref = art["manifest"]["reference_profile"]["inputs"]["input"]["features"][0]["counts"]
        points.setdefault(art["version"], []).append((row["received_at"] - t0, psi(ref, counts)))
    latency = {}
    for sha, art in refs.items():
        agg = fleet.telemetry.aggregate([sha], None, 0.0)
        latency[art["version"]] = agg.latency(0.5)
    return {"psi": points, "latency_p50_ms": latency}


def write_report(path: Path, summary: dict[str, Any], history: list[dict[str, Any]]) -> Path:
    t0 = history[0]["t"] if history else 0.0
    versions = sorted({v for row in history for v in row["versions"].values() if v})
    rollout = {v: [(r["t"] - t0, sum(1 for x in r["versions"].values() if x == v)) for r in history] for v in versions}
    agent: dict[str, list[tuple[float, float]]] = {}
    for r in history:
        if r["agent_accuracy"] is not None:
            agent.setdefault(r["versions"].get("agent-00") or "?", []).append((r["t"] - t0, r["agent_accuracy"]))
    series = summary.get("series", {})
    parts = [
        _plot("Devices per release", rollout, "devices"),
        _plot("Real agent: accuracy on the traffic it served (%)", agent, "%"),
        _plot("Drift: PSI of each telemetry batch against its release's reference", series.get("psi", {}), "PSI"),
        _bars("p50 latency per release (ms, device telemetry)", series.get("latency_p50_ms", {})),
        _bars("Accuracy before/after on the drifted data (%, flow evaluation)", _before_after(summary)),
    ]
    body = "\n".join(parts)
    page = (
        "<!doctype html><meta charset='utf-8'><title>edgeml demo</title>"
        "<style>body{font-family:sans-serif;max-width:720px;margin:2em auto}pre{background:#f4f4f4;padding:1em;"
        "overflow:auto;font-size:12px}</style><h1>edgeml demo</h1>"
        f"<p>{html.escape(summary.get('flow', {}).get('reason', ''))} in {summary.get('seconds')} s.</p>{body}"
        f"<h2>Summary</h2><pre>{html.escape(json.dumps(summary, indent=1, default=str))}</pre>"
    )
    path.write_text(page, encoding="utf-8")
    return path


def _before_after(summary: dict[str, Any]) -> dict[str, float]:
    acc = summary.get("accuracy", {})
    out = {}
    for data, per in acc.items():
        for model, value in per.items():
            out[f"{data} · {model}"] = value
    return out


def _plot(title: str, series: dict[str, list[tuple[float, float]]], unit: str) -> str:
    pts = [p for s in series.values() for p in s]
    if not pts:
        return f"<h2>{html.escape(title)}</h2><p>no data</p>"
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts) or 1.0
    y1 = max(p[1] for p in pts) or 1.0

    def sx(x: float) -> float:
        return _PAD + (x - x0) / max(x1 - x0, 1e-9) * (_W - 2 * _PAD)

    def sy(y: float) -> float:
        return _H - _PAD + -y / y1 * (_H - 2 * _PAD)

    lines = []
    for i, (name, s) in enumerate(sorted(series.items())):
        color = _COLORS[i % len(_COLORS)]
        d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
        lines.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{d}'/>")
        lines.append(f"<text x='{_W - _PAD - 120}' y='{20 + 14 * i}' fill='{color}' font-size='12'>"
                     f"{html.escape(str(name))}</text>")  # fmt: skip
    axes = (f"<line x1='{_PAD}' y1='{_H - _PAD}' x2='{_W - _PAD}' y2='{_H - _PAD}' stroke='#999'/>"
            f"<text x='4' y='{_PAD}' font-size='11'>{y1:.3g} {html.escape(unit)}</text>"
            f"<text x='{_W - _PAD - 40}' y='{_H - 8}' font-size='11'>{x1 - x0:.0f} s</text>")  # fmt: skip
    return f"<h2>{html.escape(title)}</h2><svg width='{_W}' height='{_H}'>{axes}{''.join(lines)}</svg>"


def _bars(title: str, values: dict[str, float | None]) -> str:
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return f"<h2>{html.escape(title)}</h2><p>no data</p>"
    top = max(values.values()) or 1.0
    rows = []
    for i, (name, v) in enumerate(values.items()):
        width = v / top * (_W - 260)
        y = 10 + 24 * i
        rows.append(f"<text x='0' y='{y + 13}' font-size='12'>{html.escape(name)}</text>"
                    f"<rect x='200' y='{y}' width='{width:.1f}' height='16' fill='{_COLORS[i % len(_COLORS)]}'/>"
                    f"<text x='{205 + width:.1f}' y='{y + 13}' font-size='12'>{v:.3g}</text>")  # fmt: skip
    return f"<h2>{html.escape(title)}</h2><svg width='{_W}' height='{20 + 24 * len(values)}'>{''.join(rows)}</svg>"

"""A bench job's status → one self-contained HTML page: the per-device table and one plot, each device's
latency distribution (box: p25–p75, whiskers p5–p99, tick at p50) with the baseline's beside it, drawn as
plain inline SVG from the DDSketch every device sends (no scripts, no external files)."""

from __future__ import annotations

import html
from typing import Any

from edgeml.sketches import DDSketch

__all__ = ["COLUMNS", "bench_html", "device_cells"]

COLUMNS = ("device", "state", "p50 ms", "p90 ms", "p99 ms", "per s", "vs baseline", "peak RSS MiB", "self-test",
           "CPU", "note")  # fmt: skip

_ROW, _LEFT, _WIDTH, _BOX = 34, 170, 640, 10
_COLOURS = {"artifact": "#2b6cb0", "baseline": "#a0a0a0"}
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def bench_html(status: dict[str, Any]) -> str:
    rows = status["results"]
    title = f"edgeml fleet bench {status['id']}: {status['artifact']}" + (
        f" vs {status['baseline']}" if status.get("baseline") else ""
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>"
        f"<h1>{_e(title)}</h1><p>selector <code>{_e(status['selector'])}</code>, settings "
        f"<code>{_e(str(status['settings']))}</code></p>"
        f"<h2>Latency distribution per device</h2>{_plot(rows)}<h2>Devices</h2>{_table(rows)}</body></html>"
    )


def _plot(rows: list[dict[str, Any]]) -> str:
    measured = [r for r in rows if r["result"]]
    if not measured:
        return "<p>no device answered</p>"
    boxes = {r["device_id"]: _quantiles(r["result"]) for r in measured}
    top = max(q[-1] for per in boxes.values() for q in per.values()) * 1.05 or 1.0
    x = lambda ms: _LEFT + ms / top * _WIDTH  # noqa: E731
    height = _ROW * len(boxes) + 40
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{_LEFT + _WIDTH + 20}' height='{height}'>"]
    for i, (device, per) in enumerate(boxes.items()):
        y0 = 10 + i * _ROW
        parts.append(f"<text x='4' y='{y0 + 16}' font-size='12'>{_e(device)}</text>")
        for j, (name, q) in enumerate(per.items()):
            y = y0 + 4 + j * (_BOX + 4)
            c = _COLOURS.get(name, "#555")
            p5, p25, p50, p75, p95, p99 = (x(v) for v in q)
            parts.append(
                f"<g><title>{_e(device)} {name}: p50 {q[2]:.3f} ms, p99 {q[5]:.3f} ms</title>"
                f"<line x1='{p5:.1f}' x2='{p99:.1f}' y1='{y + _BOX / 2}' y2='{y + _BOX / 2}' stroke='{c}'/>"
                f"<rect x='{p25:.1f}' y='{y}' width='{max(p75 - p25, 1):.1f}' height='{_BOX}' fill='{c}' "
                f"fill-opacity='0.5' stroke='{c}'/><line x1='{p50:.1f}' x2='{p50:.1f}' y1='{y}' y2='{y + _BOX}' "
                f"stroke='black' stroke-width='2'/><circle cx='{p95:.1f}' cy='{y + _BOX / 2}' r='2' fill='{c}'/></g>"
            )
    axis_y = height - 24
    parts.append(f"<line x1='{_LEFT}' x2='{_LEFT + _WIDTH}' y1='{axis_y}' y2='{axis_y}' stroke='black'/>")
    for k in range(6):
        v = top * k / 5
        parts.append(f"<text x='{x(v):.1f}' y='{axis_y + 14}' font-size='11' text-anchor='middle'>{v:.2f}</text>")
    parts.append(f"<text x='{_LEFT + _WIDTH}' y='{height - 1}' font-size='11' text-anchor='end'>ms per call "
                 "(blue: artifact, grey: baseline; box p25–p75, whiskers p5–p99, dot p95)</text></svg>")  # fmt: skip
    return "".join(parts)


def _quantiles(result: dict[str, Any]) -> dict[str, list[float]]:
    out = {}
    for name, data in result.get("latency_sketch_ms", {}).items():
        sketch = DDSketch.from_dict(data)
        out[name] = [sketch.quantile(q) or 0.0 for q in _QUANTILES]
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    head = list(COLUMNS)
    body = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in rows:
        cells = [_e(c) for c in device_cells(r)]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(body) + "</table>"


def device_cells(row: dict[str, Any]) -> list[str]:
    """One device's row, as the CLI table and the HTML table show it."""
    res = row.get("result") or {}
    a = (res.get("latency") or {}).get("artifact")
    ratio = res.get("ratio")
    host = res.get("host") or {}
    figures = (
        [f"{a['p50_ms']:.3f}", f"{a['p90_ms']:.3f}", f"{a['p99_ms']:.3f}", f"{a['throughput_per_s']:,.0f}"]
        if a
        else ["—"] * 4
    )
    rss = (res.get("memory_mb") or {}).get("peak_rss")
    test = res.get("self_test")
    return [
        row["device_id"], row["state"], *figures, f"{ratio:.3f}" if ratio is not None else "—",
        f"{rss:.0f}" if rss else "—", "—" if test is None else "pass" if test.get("passed") else "FAIL",
        host.get("description", "—"), row.get("reason") or "",
    ]  # fmt: skip


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)

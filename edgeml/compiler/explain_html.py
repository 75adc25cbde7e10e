"""`explain.json` (+ manifest) → one self-contained HTML page: candidates, a latency/quality scatter, the
accuracy-aware search (its measured layer ranking as a bar chart and table, and every mix it tried), and per
candidate a per-layer SQNR bar chart and table. Inline CSS and SVG only: no script, no external file."""

from __future__ import annotations

import html
from typing import Any

from edgeml.compiler.explain_report import (
    cosine_text,
    fidelity_rows,
    latency_line,
    search_rows,
    source_speedup,
    speed_header,
)
from edgeml.compiler.pruning.pruning_summary import pruning_rows, recovery_line

__all__ = ["render_html"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #eee;
text-align:right}th{background:#f6f6f6}td.l,th.l{text-align:left}tr.shipped{background:#e9f7ec;font-weight:600}
.muted{color:#777}.float{color:#c45a00}.int8{color:#1f5fa8}svg text{font:11px system-ui,sans-serif}
"""
_INT8, _FLOAT = "#1f5fa8", "#e07b1f"


def _where(explain: dict[str, Any]) -> str:
    return latency_line(explain["host"], explain.get("latency_measured_on"))


def render_html(explain: dict[str, Any], manifest: dict[str, Any]) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>edgeml explain — {e(manifest['name'])} {e(manifest['version'])}</title><style>{_CSS}</style>",
        "</head><body>",
        f"<h1>{e(manifest['name'])} {e(manifest['version'])} → {e(manifest['target']['id'])}</h1>",
        f"<p><b>shipped {e(explain['shipped'])}</b>: {e(explain['reason'])}</p>",
        f"<p class='muted'>budget: {e(_budget(explain))}</p>",
        *([f"<p class='muted'>{e(_where(explain))}</p>"] if explain.get("host") else []),
        "<h2>Candidates</h2>",
        _candidates_table(explain),
        _scatter(explain),
        *(["<h2>Fidelity per output</h2>", _fidelity_table(explain)] if fidelity_rows(explain) else []),
    ]
    if explain.get("pruning"):
        parts += ["<h2>Pruning</h2>", _pruning(explain["pruning"])]
    search = explain.get("mixed_precision") or {}
    if search.get("ranking"):
        parts += ["<h2>Accuracy-aware search (int8-mixed)</h2>", _search(search)]
    for name, rows in explain.get("layers", {}).items():
        parts += [
            f"<h2>Layers of {e(name)}</h2>",
            f"<p class='muted'>{e(_layers_caption(explain))}</p>",
            _sqnr_bars(rows),
            _layers_table(rows),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def _budget(explain: dict[str, Any]) -> str:
    b = explain["budget"]
    quality = f"max drop {b['max_drop']:g} points" if explain["float"]["accuracy"] is not None else (
        f"every channel's cosine ≥ {b['min_cosine']:g}"
    )  # fmt: skip
    agreement = f", probability decisions agreeing ≥ {100 * b['min_agreement']:g}%" if "min_agreement" in b else ""
    return f"{quality}, any channel's cosine ≥ {b['min_channel_cosine']:g}{agreement}"


def _layers_caption(explain: dict[str, Any]) -> str:
    a = explain.get("analysis", {})
    order = (
        "ranked by measured sensitivity (output SQNR recovered when the layer is kept in float)"
        if explain["sensitivity"] == "measured"
        else "ranked by lowest activation SQNR (estimated: no accuracy-aware search ran)"
    )
    return f"Quantized vs float activations on {a.get('samples', '?')} {a.get('data', 'calibration')} samples; {order}."


def _fmt(value: Any, spec: str, empty: str = "—") -> str:
    return empty if value is None else format(value, spec)


def _candidates_table(explain: dict[str, Any]) -> str:
    e = html.escape
    head = "<tr><th class=l>candidate</th><th class=l>precision</th><th>p50 ms</th>"
    head += f"<th>{e(speed_header(explain))}</th><th>size</th>"
    head += "<th>accuracy</th><th>worst cosine</th><th class=l>verdict</th></tr>"
    f = explain["float"]
    rows = [
        f"<tr class=muted><td class=l>float (source)</td><td class=l>float</td><td>{f['latency_p50_ms']:.3f}</td>"
        f"<td>{source_speedup(explain):.2f}×</td><td>{f['size_bytes'] / 1024:.1f} KiB</td>"
        f"<td>{_fmt(f['accuracy'], '.2f')}</td><td>—</td>"
        "<td class=l>reference</td></tr>"
    ]
    for c in explain["candidates"]:
        size = "—" if c["size_bytes"] is None else f"{c['size_bytes'] / 1024:.1f} KiB"
        rows.append(
            f"<tr class='{'shipped' if c['shipped'] else ''}'><td class=l>{e(c['name'])}</td>"
            f"<td class=l>{e(c['precision'])}</td><td>{_fmt(c['latency_p50_ms'], '.3f')}</td>"
            f"<td>{_fmt(c['speedup'], '.2f')}×</td><td>{size}</td><td>{_fmt(c['accuracy'], '.2f')}</td>"
            f"<td>{cosine_text(c['worst_cosine'])}</td><td class=l>{e(c['verdict'])}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _fidelity_table(explain: dict[str, Any]) -> str:
    """Per candidate and output: every fidelity figure vs the float source, each over all evaluation samples."""
    rows = fidelity_rows(explain)
    shipped = {c["name"] for c in explain["candidates"] if c["shipped"]}
    head = "<tr>" + "".join(_cell(k, k, "th") for k in rows[0]) + "</tr>"
    body = "".join(
        f"<tr class='{'shipped' if r['candidate'] in shipped else ''}'>"
        + "".join(_cell(k, v, "td") for k, v in r.items())
        + "</tr>"
        for r in rows
    )
    return (
        "<p class='muted'>Each figure over all evaluation samples: cosine of the whole output and of its worst "
        "channel, SNR, the largest absolute error and the largest error relative to its channel's float peak, "
        f"and the share of decisions taken as float takes them.</p><table>{head}{body}</table>"
    )


def _cell(column: str, value: str, tag: str) -> str:
    left = " class=l" if column in ("candidate", "output", "kind") else ""
    return f"<{tag}{left}>{html.escape(value)}</{tag}>"


def _scatter(explain: dict[str, Any]) -> str:
    """Latency (x) against accuracy, or worst cosine without labels (y), one point per measured candidate."""
    labelled = explain["float"]["accuracy"] is not None
    key = "accuracy" if labelled else "worst_cosine"
    f = explain["float"]
    has_fp32 = any(c["name"] == "fp32" for c in explain["candidates"])
    source_point = not has_fp32 or bool(explain.get("pruning"))  # pruned: fp32 is the pruned float, not the source
    points = [("float (source)", f["latency_p50_ms"], f["accuracy"] if labelled else 1.0, False)] * source_point
    points += [
        (c["name"], c["latency_p50_ms"], c[key], c["shipped"])
        for c in explain["candidates"]
        if c["latency_p50_ms"] is not None and c[key] is not None
    ]
    w, h, pad = 640, 300, 56
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    x0, x1 = 0.0, max(xs) * 1.15
    y0, y1 = _span(min(ys), max(ys))

    def sx(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (w - 2 * pad)

    def sy(y: float) -> float:
        return h - pad + (y0 - y) / (y1 - y0) * (h - 2 * pad)

    svg = [f"<svg width='{w}' height='{h}' viewBox='0 0 {w} {h}' role='img'>"]
    svg.append(f"<line x1='{pad}' y1='{h - pad}' x2='{w - pad}' y2='{h - pad}' stroke='#999'/>")
    svg.append(f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{h - pad}' stroke='#999'/>")
    svg.append(f"<text x='{w / 2}' y='{h - 16}' text-anchor='middle'>host p50 latency (ms)</text>")
    svg.append(f"<text x='14' y='{h / 2}' transform='rotate(-90 14 {h / 2})' text-anchor='middle'>"
               f"{'top-1 accuracy (%)' if labelled else 'worst output cosine vs float'}</text>")  # fmt: skip
    for v in (x0, x1):
        svg.append(f"<text x='{sx(v)}' y='{h - pad + 14}' text-anchor='middle'>{v:.3g}</text>")
    for v in (y0, y1):
        svg.append(f"<text x='{pad - 4}' y='{sy(v) + 4}' text-anchor='end'>{v:.6g}</text>")
    for name, x, y, shipped in points:
        color = "#1a7f37" if shipped else ("#888" if name in ("float (source)", "fp32") else _INT8)
        svg.append(f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='{7 if shipped else 5}' fill='{color}'/>")
        svg.append(f"<text x='{sx(x) + 9:.1f}' y='{sy(y) - 6:.1f}'>{html.escape(name)}</text>")
    svg.append("</svg>")
    return "<p class='muted'>Latency against quality; the shipped candidate is green.</p>" + "".join(svg)


def _span(lo: float, hi: float) -> tuple[float, float]:
    if hi - lo < 1e-12:
        return lo - 0.5 * (abs(lo) or 1) * 1e-3, hi + 0.5 * (abs(hi) or 1) * 1e-3
    margin = (hi - lo) * 0.1
    return lo - margin, hi + margin


def _sqnr_bars(rows: list[dict[str, Any]]) -> str:
    """One horizontal bar per layer (in rank order): its activation SQNR vs float, coloured by precision."""
    if not rows:
        return ""
    bar_h, label_w, w = 18, 260, 760
    top = max(r["sqnr_db"] for r in rows) or 1.0
    h = bar_h * len(rows) + 24
    svg = [f"<svg width='{w}' height='{h}' viewBox='0 0 {w} {h}' role='img'>"]
    for i, r in enumerate(rows):
        y = i * bar_h + 4
        length = max(1.0, r["sqnr_db"] / top * (w - label_w - 70))
        color = _FLOAT if r["precision"] == "float" else _INT8
        svg.append(f"<text x='{label_w - 6}' y='{y + 12}' text-anchor='end'>"
                   f"{html.escape(r['layer'])} ({html.escape(r['op'])})</text>")  # fmt: skip
        svg.append(f"<rect x='{label_w}' y='{y}' width='{length:.1f}' height='{bar_h - 4}' fill='{color}'/>")
        svg.append(f"<text x='{label_w + length + 4:.1f}' y='{y + 12}'>{r['sqnr_db']:.1f} dB</text>")
    svg.append(f"<text x='{label_w}' y='{h - 4}' class='muted'>activation SQNR vs float (dB; higher is better) — "
               f"<tspan fill='{_INT8}'>INT8</tspan> / <tspan fill='{_FLOAT}'>float</tspan></text></svg>")  # fmt: skip
    return "".join(svg)


def _layers_table(rows: list[dict[str, Any]]) -> str:
    e = html.escape
    head = (
        "<tr><th>rank</th><th class=l>layer</th><th class=l>op</th><th class=l>precision</th><th>SQNR dB</th>"
        "<th>lost here dB</th><th>cosine</th><th>max err</th><th>float range</th><th>INT8 range</th>"
        "<th>clipped</th><th>float gain dB</th><th class=l>why</th></tr>"
    )
    body = []
    for r in rows:
        int8 = "—" if r["int8_min"] is None else f"{r['int8_min']:.3g} … {r['int8_max']:.3g}"
        body.append(
            f"<tr><td>{r['sensitivity_rank']}</td><td class=l>{e(r['layer'])}</td><td class=l>{e(r['op'])}</td>"
            f"<td class='l {e(r['precision'])}'>{e(r['precision'])}</td><td>{r['sqnr_db']:.1f}</td>"
            f"<td>{r['sqnr_drop_db']:.1f}</td><td>{r['cosine']:.6f}</td><td>{r['max_abs_err']:.3g}</td>"
            f"<td>{r['float_min']:.3g} … {r['float_max']:.3g}</td><td>{int8}</td>"
            f"<td>{100 * r['clipping_rate']:.2f}%</td><td>{_fmt(r['gain_db'], '+.2f')}</td>"
            f"<td class=l>{e(r['why'])}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def _search(search: dict[str, Any]) -> str:
    """What the search measured: all-INT8's miss, each layer's gain in float (bars, then a table), each mix tried."""
    e = html.escape
    rows = search_rows(search)
    seconds = f"; {search['seconds']:.1f} s" if search.get("seconds") else ""
    unranked = f"; {search['unranked']} more INT8 layer(s) not ranked" if search.get("unranked") else ""
    parts = [
        f"<p><b>{e(search['summary'])}</b></p>",
        f"<p class='muted'>all INT8: {e(search['base_miss'])} (output SQNR {search['base_sqnr_db']:.1f} dB); "
        f"{len(rows)} layer(s) ranked, {len(search.get('tries', []))} mix(es) tried{unranked}{seconds}.</p>",
        _gain_bars(rows),
    ]
    head = (
        "<tr><th>rank</th><th class=l>layer</th><th class=l>op</th><th>float gain dB</th><th>weights</th>"
        "<th>output SQNR dB</th><th>cosine</th><th>accuracy</th><th class=l>precision</th><th class=l>why</th></tr>"
    )
    body = "".join(
        f"<tr><td>{r['rank']}</td><td class=l>{e(r['layer'])}</td><td class=l>{e(r['op'])}</td>"
        f"<td>{r['gain_db']:+.2f}</td><td>{r.get('cost', 0):,}</td><td>{r['sqnr_db']:.1f}</td>"
        f"<td>{r['cosine']:.6f}</td>"
        f"<td>{_fmt(r['accuracy'], '.2f')}</td><td class='l {r['precision']}'>{r['precision']}</td>"
        f"<td class=l>{e(r['why'])}</td></tr>"
        for r in rows
    )
    parts.append(f"<p class='muted'>Each layer alone kept in float, measured on the evaluation set; weights: what "
                 "keeping it in float costs (its weight elements).</p>"
                 f"<table>{head}{body}</table>")  # fmt: skip
    tries = search.get("tries", [])
    if tries:
        head = (
            "<tr><th class=l>layers in float</th><th>output SQNR dB</th><th>cosine</th><th>accuracy</th>"
            "<th class=l>verdict</th></tr>"
        )
        body = "".join(
            f"<tr class='{'shipped' if t['keep_float'] == search.get('keep_float') else ''}'>"
            f"<td class=l>{e(', '.join(t['keep_float']))}</td><td>{t['sqnr_db']:.1f}</td><td>{t['cosine']:.6f}</td>"
            f"<td>{_fmt(t['accuracy'], '.2f')}</td><td class=l>{e(t['miss'] or 'within budget')}</td></tr>"
            for t in tries
        )
        parts.append(f"<p class='muted'>Mixes tried, in order.</p><table>{head}{body}</table>")
    return "".join(parts)


def _gain_bars(rows: list[dict[str, Any]]) -> str:
    """One bar per ranked layer: the output SQNR it recovers in float (negative: float made it worse)."""
    bar_h, label_w, w = 18, 260, 760
    span = max(max(abs(r["gain_db"]) for r in rows), 1e-3)
    zero = label_w + (w - label_w - 90) * (min(r["gain_db"] for r in rows) < 0) / 3
    scale = (w - zero - 90) / span
    h = bar_h * len(rows) + 24
    svg = [f"<svg width='{w}' height='{h}' viewBox='0 0 {w} {h}' role='img'>"]
    for i, r in enumerate(rows):
        y, length = i * bar_h + 4, r["gain_db"] * scale
        x = zero + min(0.0, length)
        color = _FLOAT if r["precision"] == "float" else _INT8
        svg.append(f"<text x='{label_w - 6}' y='{y + 12}' text-anchor='end'>"
                   f"{html.escape(r['layer'])} ({html.escape(r['op'])})</text>")  # fmt: skip
        svg.append(f"<rect x='{x:.1f}' y='{y}' width='{max(1.0, abs(length)):.1f}' height='{bar_h - 4}' "
                   f"fill='{color}'/>")  # fmt: skip
        svg.append(f"<text x='{zero + max(0.0, length) + 4:.1f}' y='{y + 12}'>{r['gain_db']:+.2f} dB</text>")
    svg.append(f"<text x='{label_w}' y='{h - 4}' class='muted'>output SQNR recovered with the layer in float "
               f"(dB) — <tspan fill='{_FLOAT}'>kept in float</tspan> / <tspan fill='{_INT8}'>INT8</tspan>"
               "</text></svg>")  # fmt: skip
    return "".join(svg)


def _pruning(p: dict[str, Any]) -> str:
    e = html.escape
    head = f"<tr><th class=l>pruned {e(p['method'])}</th><th>before</th><th>after</th></tr>"
    rows = "".join(f"<tr><td class=l>{e(w)}</td><td>{e(b)}</td><td>{e(a)}</td></tr>" for w, b, a in pruning_rows(p))
    return f"<table>{head}{rows}</table><p>{e(recovery_line(p))}</p><p>{e(p.get('note', ''))}</p>"

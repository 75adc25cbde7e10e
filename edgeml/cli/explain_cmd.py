"""`edgeml explain`: why an artifact holds what it holds — candidates tried, the decision, and per layer the
quantized-vs-float numerics, top offenders first (from the artifact's explain.json)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from edgeml.cli.output import console, errors_handled, human_size, print_json, print_table
from edgeml.compiler.explain_html import render_html
from edgeml.compiler.explain_report import (
    cosine_text,
    fidelity_rows,
    latency_line,
    search_rows,
    source_speedup,
    speed_header,
)
from edgeml.compiler.pruning.pruning_summary import pruning_rows, recovery_line
from edgeml.compiler.read_explain import read_explain


@click.command("explain")
@click.argument("artifact", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print explain.json (every candidate, every layer).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Write a self-contained HTML report here.")
@click.option("--top", type=int, default=15, show_default=True, help="Layers shown per candidate (worst first).")
@errors_handled
def explain_cmd(artifact: str, as_json: bool, html_out: str | None, top: int) -> None:
    """Explain ARTIFACT: every candidate tried with its latency, size and accuracy, which shipped and why,
    and per layer of each quantized candidate: SQNR, cosine, max error, value and INT8 ranges, clipping,
    precision chosen and why, sensitivity rank."""
    manifest, explain = read_explain(artifact)
    if html_out:
        Path(html_out).write_text(render_html(explain, manifest), encoding="utf-8")
    if as_json:
        print_json(explain | ({"html": html_out} if html_out else {}))
        return
    console.print(
        f"[bold]{escape(manifest['name'])} {escape(manifest['version'])}[/] → {manifest['target']['id']}: "
        f"[bold green]shipped {escape(explain['shipped'])}[/] — {escape(explain['reason'])}",
        soft_wrap=True,
    )
    print_table(_candidates(explain))
    for name, verdict in ((c["name"], c["verdict"]) for c in explain["candidates"]):
        console.print(f"  {escape(name)}: {escape(verdict)}", soft_wrap=True)
    if fidelity_rows(explain):
        print_table(_fidelity(explain))
    if explain.get("host"):
        console.print(escape(latency_line(explain["host"], explain.get("latency_measured_on"))))
    if explain.get("pruning"):
        print_table(_pruning(explain["pruning"]))
    for name, rows in explain.get("layers", {}).items():
        print_table(_layers(name, rows[:top], len(rows), explain))
    search = explain.get("mixed_precision") or {}
    if search.get("ranking") and "int8-mixed" not in explain.get("layers", {}):
        print_table(_search_ranking(search, top))
    elif not explain.get("layers"):
        console.print("[dim]no QDQ ONNX candidate was built, so there is no per-layer numerics table[/]")
    if html_out:
        console.print(f"[green]✓[/] wrote {html_out}")


def _candidates(explain: dict) -> Table:
    labelled = explain["float"]["accuracy"] is not None
    table = Table("candidate", "precision", "p50 ms", speed_header(explain), "size",
                  "accuracy" if labelled else "worst cosine", "verdict",
                  title="candidates", title_justify="left")  # fmt: skip
    f = explain["float"]
    table.add_row("float (source)", "float", f"{f['latency_p50_ms']:.3f}", f"{source_speedup(explain):.2f}×",
                  human_size(f["size_bytes"]),
                  _num(f["accuracy"], ".2f", "%") if labelled else "1", "reference", style="dim")  # fmt: skip
    for c in explain["candidates"]:
        quality = _num(c["accuracy"], ".2f", "%") if labelled else cosine_text(c["worst_cosine"])
        style = "bold green" if c["shipped"] else "dim" if not c["verdict"].startswith("passes") else ""
        table.add_row(
            c["name"], c["precision"], _num(c["latency_p50_ms"], ".3f"), _num(c["speedup"], ".2f", "×"),
            "—" if c["size_bytes"] is None else human_size(c["size_bytes"]), quality,
            c["verdict"].split(":")[0], style=style,
        )  # fmt: skip
    return table


def _fidelity(explain: dict) -> Table:
    """Per candidate and output: every fidelity figure vs the float source, each over all evaluation samples."""
    rows = fidelity_rows(explain)
    table = Table(*rows[0], title="fidelity vs float per output (over all samples)", title_justify="left")
    shipped = {c["name"] for c in explain["candidates"] if c["shipped"]}
    for r in rows:
        table.add_row(*r.values(), style="bold green" if r["candidate"] in shipped else "")
    return table


def _layers(name: str, rows: list[dict], total: int, explain: dict) -> Table:
    order = "measured sensitivity" if explain["sensitivity"] == "measured" else "lowest SQNR (estimated)"
    samples = explain.get("analysis", {}).get("samples", "?")
    table = Table(
        "#", "layer", "op", "prec", "SQNR dB", "lost here", "cosine", "max err", "float range", "INT8 range",
        "clip", "float gain", "why",
        title=f"layers of {name} ({len(rows)} of {total}, by {order}; {samples} calibration samples)",
        title_justify="left",
    )  # fmt: skip
    for r in rows:
        int8 = "—" if r["int8_min"] is None else f"{r['int8_min']:.3g}…{r['int8_max']:.3g}"
        table.add_row(
            str(r["sensitivity_rank"]), r["layer"], r["op"], r["precision"], f"{r['sqnr_db']:.1f}",
            f"{r['sqnr_drop_db']:.1f}", f"{r['cosine']:.5f}", f"{r['max_abs_err']:.3g}",
            f"{r['float_min']:.3g}…{r['float_max']:.3g}", int8, f"{100 * r['clipping_rate']:.1f}%",
            _num(r["gain_db"], "+.2f"), r["why"],
            style="yellow" if r["precision"] == "float" else "",
        )  # fmt: skip
    return table


def _search_ranking(search: dict, top: int) -> Table:
    """The accuracy-aware search's measured ranking, where no per-layer numerics table covers the mix (IRs)."""
    table = Table("#", "layer", "op", "float gain dB", "weights", "cosine, this layer in float", "precision", "why",
                  title="layers ranked by the accuracy-aware search (output SQNR each recovers in float)",
                  title_justify="left")  # fmt: skip
    for r in search_rows(search)[:top]:
        table.add_row(str(r["rank"]), r["layer"], r["op"], f"{r['gain_db']:+.2f}", f"{r.get('cost', 0):,}",
                      f"{r['cosine']:.6f}",
                      r["precision"], r["why"], style="yellow" if r["precision"] == "float" else "")  # fmt: skip
    return table


def _pruning(p: dict) -> Table:
    table = Table(f"pruned {p['method']}", "before", "after", title="pruning", title_justify="left",
                  caption=f"{recovery_line(p)}\n{p.get('note', '')}", caption_justify="left")  # fmt: skip
    for row in pruning_rows(p):
        table.add_row(*row)
    return table


def _num(value, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{format(value, spec)}{suffix}"

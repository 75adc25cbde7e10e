"""bench_models.py's results → the host description and the markdown in benchmarks/README_models.md.

Everything above the ``<!-- notes -->`` marker is regenerated; what a person wrote below it is kept.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

NOTES_MARK = "<!-- notes -->"
DISTS = ("onnxruntime", "openvino", "nncf", "torch", "onnx", "litert-torch", "ai-edge-litert", "ethos-u-vela")


def environment() -> dict[str, Any]:
    from edgeml.host import host_info

    host = host_info().to_dict()
    versions = {}
    for dist in DISTS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    cpu_model = ""
    try:
        line = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name"))
        cpu_model = line.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        pass
    return {"host": host, "cpu_model": cpu_model, "python": platform.python_version(), "versions": versions}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _task(cell: dict[str, Any]) -> str:
    task = cell.get("task") or {}
    if "error" in task:
        return f"error: {task['error'][:120]}"
    if "skipped" in task:
        return task["skipped"]
    if "agree" not in task:
        return "–"
    rest = ", ".join(f"{k} {_fmt(v)}" for k, v in task.items() if k != "agree" and isinstance(v, (int, float)))
    note = f" ({task['note']})" if task.get("note") else ""
    return f"**{task['agree']:.3f}** ({rest}){note}"


def _fidelity(cell: dict[str, Any]) -> str:
    fid = cell.get("fidelity") or {}
    keys = ("cosine", "worst_channel_cosine", "sqnr_db", "max_abs_err")
    shown = [f"{k.replace('worst_channel_cosine', 'ch-cos')} {_fmt(fid[k])}" for k in keys if k in fid]
    shown += [f"{k} {_fmt(v)}" for k, v in fid.items() if k not in keys]
    return ", ".join(shown) or "–"


def _result(cell: dict[str, Any]) -> str:
    r = cell.get("result", "?")
    return f"**{r}**" if r in ("TRACEBACK", "KILLED", "TIMEOUT", "FAILED") else r


def _rows(results: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| model | target / anchor | result | precision | speed vs ORT FP32 | task check vs float "
        "| fidelity (manifest) | compile s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        if "cells" not in res:
            rows.append(f"| {res['model']} | – | **{res.get('build_error') or res.get('bench_error', '')[-200:]}** |")
            continue
        for name, cell in res["cells"].items():
            if name.startswith("_") or cell.get("result") in ("n/a", None):
                continue
            speed = f"{cell['speed_vs_fp32']:.2f}×" if "speed_vs_fp32" in cell else "–"
            rows.append(
                f"| {res['model']} | {name} | {_result(cell)} | {cell.get('precision') or '–'} | {speed} "
                f"| {_task(cell)} | {_fidelity(cell)} | {_fmt(cell.get('compile_s'), 1)} "
                f"| {_fmt(cell.get('peak_rss_mb'), 0)} |"
            )
    return rows


def _one_line(text: str) -> str:
    return " ⏎ ".join(ln.strip() for ln in str(text).splitlines() if ln.strip()).replace("`", "'")


def _failures(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for res in results:
        for name, cell in (res.get("cells") or {}).items():
            if cell.get("result") in ("refused", "TRACEBACK", "KILLED", "TIMEOUT", "FAILED"):
                where = f" — at `{cell['where']}`" if cell.get("where") else ""
                lines.append(
                    f"- **{res['model']} × {name}** ({cell['result']}): `{_one_line(cell.get('why', ''))}`{where}"
                )
            elif cell.get("result") == "failed":
                lines.append(f"- {res['model']} × {name} (anchor failed): `{_one_line(cell.get('why', ''))}`")
            task = cell.get("task") or {}
            if "error" in task:
                lines.append(f"- {res['model']} × {name}: built, but running it failed: `{_one_line(task['error'])}`")
    return lines


def _summary(results: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for res in results:
        for name, cell in (res.get("cells") or {}).items():
            if name.startswith("_") or name.endswith("defaults") or cell.get("result") in ("n/a", None):
                continue
            counts[cell.get("result", "?")] = counts.get(cell.get("result", "?"), 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def markdown(doc: dict[str, Any], existing: Path | None = None) -> str:
    env = doc["environment"]
    host = env["host"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    argv = " ".join(doc.get("argv") or [])
    lines = [
        "# Real-model corpus × targets (issue 12)",
        "",
        "Generated by `benchmarks/bench_models.py` (the part above the notes marker is rewritten on every run).",
        "Rerun:",
        "",
        "```",
        f"python benchmarks/bench_models.py {argv}".rstrip(),
        "```",
        "",
        f"Host: {env['cpu_model'] or host.get('cpu')} · {host.get('description')} · "
        f"ISA {', '.join(host.get('isa', []))} · VNNI {host.get('vnni')} · AMX {host.get('amx')} · "
        f"{host.get('cores')} cores (shared, loaded) · Python {env['python']}",
        "",
        f"Tools: {versions}",
        "",
        f"Mode: {'quick (32 calibration samples, 1 s timing)' if doc.get('quick') else 'full'}; "
        f"wall time {doc.get('wall_s')} s. Compile cells: {_summary(doc['results'])}.",
        "",
        "speed: p50 of ONNX Runtime FP32 on the source ÷ p50 of the result, one thread, batch 1, one interleaved",
        "run per model (>1 is faster). Task check: `examples/corpus/task_checks.py` vs the float model (`agree` in",
        "bold; budget 0.99). Fidelity: the worst figure over outputs that the manifest reports for what shipped.",
        "gpu-ort results run on ONNX Runtime's CPU provider (this host has no CUDA).",
        "",
        *_rows(doc["results"]),
        "",
        "## Failures and refusals, verbatim",
        "",
        *(_failures(doc["results"]) or ["(none)"]),
        "",
        NOTES_MARK,
    ]
    notes = ""
    if existing is not None and existing.exists() and NOTES_MARK in existing.read_text():
        notes = existing.read_text().split(NOTES_MARK, 1)[1]
    return "\n".join(lines) + (notes or "\n")

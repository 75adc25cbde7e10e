"""`edgeml compile`: model source → signed artifact, with per-step progress and a candidates table."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
from rich.markup import escape
from rich.table import Table

from edgeml.cli.captured_output import captured_output
from edgeml.cli.compile_flags import compile_flags, compile_kwargs
from edgeml.cli.measure_on_option import device_hook, measure_on_option, measured_on_device
from edgeml.cli.mlflow_option import mlflow_option, track_compiles
from edgeml.cli.output import console, errors_handled, human_size, print_json, print_table, stderr
from edgeml.cli.progress_view import RichProgress
from edgeml.compiler.compile import CompileResult, compile_model
from edgeml.compiler.explain_report import cosine_text, host_line, latency_line
from edgeml.compiler.measure import FLOAT
from edgeml.compiler.pruning.pruning_summary import pruning_rows, recovery_line
from edgeml.compiler.select_candidate import speed_reference, worst_cosine
from edgeml.host import peak_rss_bytes
from edgeml.locations import log_dir


@click.command("compile")
@click.argument("model")
@click.option("--targets", default=None, help="Several targets, comma-separated: one artifact each under --out.")
@compile_flags("target", "calib", "eval_data", "key", "name", "version", "release", "out", "force", "recipe_file")
@compile_flags("max_drop", "min_cosine", "min_channel_cosine", "min_agreement")
@click.option("--precision", default=None, help="Pin the precision (fp32, int8-static, int8-dynamic); default auto.")
@compile_flags("options", "inputs", "threads", "max_memory", "calib_samples", "prune", "finetune", "finetune_hook")
@compile_flags("finetune_epochs", "cache_dir", "no_cache")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Show third-party libraries' output (warnings, logs, TFLite/TorchScript prints); by default it goes "
    "to a compile log in the cache folder, named on failure.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no progress display).")
@measure_on_option
@mlflow_option
@errors_handled
def compile_cmd(model, targets, target, precision, verbose, as_json, measure_on, mlflow, **flags) -> None:
    """Compile MODEL (.onnx, .pt2, TorchScript, or package.module:function) into a signed artifact.

    Every candidate precision that fits the target is built, evaluated against the float model and timed on
    this host; the fastest one within the accuracy budget ships. Float ships when INT8 does not pay off.
    """
    kwargs = compile_kwargs(flags)
    hook = device_hook(measure_on, kwargs["key"])
    if precision:
        kwargs["options"]["precision"] = precision
    cache_dir = kwargs["cache_dir"]
    verbose = verbose or bool((click.get_current_context().find_root().params or {}).get("verbose"))
    with _third_party_output(verbose, cache_dir):
        if targets and hook:
            raise click.UsageError("--measure-on times one target's candidates: give --target, not --targets")
        if targets:
            _compile_many(model, [t.strip() for t in targets.split(",") if t.strip()], as_json, verbose, kwargs, mlflow)
            return
        if as_json:
            result = compile_model(model, target, latency_on_device=hook, **kwargs)
            measured = measured_on_device(result, quiet=True)
            print_json(result.to_dict() | track_compiles([result], mlflow) | {"peak_rss_bytes": peak_rss_bytes()}
                       | measured)  # fmt: skip
            return
        stderr.print(f"[bold]edgeml compile[/] {escape(model)}" + (f" → {escape(target)}" if target else ""))
        with RichProgress(stderr, show_other_output=verbose) as progress:
            result = compile_model(model, target, progress=progress, latency_on_device=hook, **kwargs)
        _render(result)
        measured_on_device(result, quiet=False)
        track_compiles([result], mlflow)


@contextlib.contextmanager
def _third_party_output(verbose: bool, cache_dir: str | None) -> Iterator[None]:
    """Unless verbose: third-party output → a compile log, named on failure (and, briefly, on success)."""
    if verbose:
        yield
        return
    with captured_output(log_dir(cache_dir), [console, stderr]) as log:
        try:
            yield
        except BaseException:
            if log.lines():
                stderr.print(f"[dim]third-party output of this compile: {log.path}[/]")
            raise
        if log.lines():
            stderr.print(f"[dim]{log.lines()} line(s) of third-party output in {log.path} (-v shows them)[/]")


def _compile_many(model: str, targets: list[str], as_json: bool, verbose: bool, kwargs: dict, mlflow) -> None:
    from edgeml.compiler.compile_many import compile_many

    if as_json:
        result = compile_many(model, targets, **kwargs)
        print_json(result.to_dict() | track_compiles(list(result.results.values()), mlflow))
    else:
        stderr.print(f"[bold]edgeml compile[/] {escape(model)} → {', '.join(targets)}")
        with RichProgress(stderr, show_other_output=verbose) as progress:
            result = compile_many(model, targets, progress=progress, **kwargs)
        _render_many(result)
        track_compiles(list(result.results.values()), mlflow)
    if not result.ok:
        raise SystemExit(2)


def _render_many(result) -> None:
    table = Table(
        "target",
        "status",
        "precision",
        "size",
        "host p50 ms",
        "accuracy / cosine",
        "artifact or error",
        title=f"{len(result.results)} built, {len(result.failures)} failed in {result.seconds:.1f} s",
        title_justify="left",
    )
    for target, r in result.results.items():
        met = r.manifest["metrics"]
        quality = _acc(met["accuracy"]) if met["accuracy"] is not None else cosine_text(worst_cosine(met["fidelity"]))
        table.add_row(
            target,
            "[green]ok[/]",
            r.decision.chosen,
            human_size(met["size_bytes"]),
            f"{met['latency_ms']['p50_ms']:.3f}",
            quality,
            escape(str(r.out)),
        )
    for target, exc in result.failures.items():
        table.add_row(target, "[red]failed[/]", "—", "—", "—", "—", escape(exc.message))
    print_table(table)
    for target, exc in result.failures.items():
        if exc.hint:
            console.print(f"[yellow]hint ({target}):[/] {escape(exc.hint)}")
    if result.results:
        console.print(escape(host_line(next(iter(result.results.values())).manifest["metrics"]["measured_on"])))


def _render(result: CompileResult) -> None:
    m = result.manifest
    candidates = m["decision"]["candidates"]
    ref = speed_reference(candidates)
    source_p50 = m["metrics"]["float_latency_ms"]["p50_ms"]
    ref_p50 = candidates[ref]["latency"]["p50_ms"] if ref != FLOAT else source_p50
    ref_name = "fp32" if ref != FLOAT else "float source"
    table = Table(
        "candidate",
        "size",
        "p50 ms",
        f"speed vs {ref_name}",
        "accuracy",
        "worst cosine",
        "verdict",
        title=f"{m['name']} {m['version']} → {m['target']['id']}",
        title_justify="left",
        caption=f"speed: p50 of {_speed_ref_words(ref, m)} ÷ the candidate's, as in the verdicts; "
        "accuracy, cosine: vs the float source",
        caption_justify="left",
    )
    table.add_row(
        "float (source)",
        human_size(m["metrics"]["float_size_bytes"]),
        f"{source_p50:.3f}",
        f"{ref_p50 / source_p50:.2f}×",
        _acc(m["metrics"]["float_accuracy"]),
        "—",
        "reference",
    )
    for cand, c in candidates.items():
        p50 = c["latency"]["p50_ms"]
        verdict = m["decision"]["verdicts"][cand].split(":")[0]
        style = "bold green" if cand == result.decision.chosen else "dim" if verdict.startswith("rejected") else ""
        table.add_row(
            cand,
            human_size(c["size_bytes"]),
            f"{p50:.3f}",
            f"{ref_p50 / p50:.2f}×",
            _acc(c["accuracy"]),
            cosine_text(worst_cosine(c["fidelity"])),
            verdict,
            style=style,
        )
    print_table(table)
    for cand, verdict in m["decision"]["verdicts"].items():
        console.print(f"  {escape(cand)}: {escape(verdict)}")
    console.print(f"[bold green]shipped[/] {result.decision.chosen}: {escape(result.decision.reason)}")
    if m.get("pruning"):
        _render_pruning(m["pruning"])
    console.print(_data_line(m["provenance"], m["metrics"]["float_accuracy"] is not None))
    console.print(escape(latency_line(m["metrics"]["measured_on"], m["metrics"].get("latency_measured_on"))))
    for note in result.notes:
        console.print(f"[dim]note:[/] {escape(note)}")
    cache = "all steps from cache" if result.fully_cached else f"{result.cache_hits}/{result.steps} steps from cache"
    console.print(
        f"[green]✓[/] artifact {escape(str(result.out))}  (signed by key {m['signature']['key_id']}; "
        f"{cache}; {result.seconds:.1f} s{_peak_words()})"
    )


def _peak_words() -> str:
    peak = peak_rss_bytes()
    return "" if peak is None else f"; peak memory {human_size(peak)}"


def _speed_ref_words(ref: str, m: dict) -> str:
    if ref == FLOAT:
        return "the float source (ONNX Runtime)"
    runtime = m["decision"]["candidates"][ref].get("runtime", m["target"]["runtime"])
    return f"fp32, this target's float build ({runtime})"


def _data_line(prov: dict, labelled: bool) -> str:
    """Which calibration and evaluation data the figures come from."""
    cal, ev = prov["calibration"], prov["evaluation"]
    same = ev["digest"] == cal["digest"]
    labels = "labelled" if labelled else "no labels: fidelity only"
    evaluation = "the calibration set (no --eval)" if same else f"{ev['source']} ({ev['samples']} samples, {labels})"
    return escape(
        f"data: calibrated on {cal['source']} ({cal['samples']} samples, digest {cal['digest'][:12]}); "
        f"evaluated on {evaluation}"
    )


def _render_pruning(p: dict) -> None:
    table = Table(f"pruned {p['method']}", "before", "after", title_justify="left")
    for row in pruning_rows(p):
        table.add_row(*row)
    print_table(table)
    console.print(f"  {escape(recovery_line(p))}")
    console.print(f"  {escape(p.get('note', ''))}")


def _acc(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}%"

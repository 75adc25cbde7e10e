"""`edgeml run`: batch inference of an artifact over a dataset, with a progress bar and a summary."""

from __future__ import annotations

import click

from edgeml.cli.output import console, errors_handled, print_json


@click.command("run")
@click.argument("artifact", type=click.Path(exists=True))
@click.argument("data")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Predictions: .npz, .csv or .jsonl.")
@click.option("--pubkey", required=True, type=click.Path(dir_okay=False), help="Verify the artifact against it.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Samples per inference call.")
@click.option("--threads", type=int, default=1, show_default=True, help="Inference threads.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@errors_handled
def run_cmd(artifact, data, out, pubkey, batch_size, threads, as_json) -> None:
    """Run ARTIFACT over DATA (.npz/.npy/.csv, image folder or module:function, as --calib takes; an .npz `ids`
    array is written back beside each prediction, else the sample index) through the runtime adapter the device
    agent serves with. Verified first. Interrupted, it resumes after the last block written when started again."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from edgeml.batch import run_artifact

    if as_json:
        summary = run_artifact(artifact, data, out, pubkey, batch_size, threads)
        print_json(summary.to_dict())
        return
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("predicting", total=None)
        summary = run_artifact(artifact, data, out, pubkey, batch_size, threads,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
    resumed = f" (resumed after {summary.resumed_from})" if summary.resumed_from else ""
    p50 = f"{summary.p50_batch_ms:.3f} ms" if summary.p50_batch_ms is not None else "—"
    console.print(
        f"[green]✓[/] {summary.samples} predictions{resumed} → {summary.out} ({', '.join(summary.outputs)}): "
        f"{summary.throughput_per_s:,.0f} samples/s, p50 per batch {p50}, batch {batch_size}, {threads} thread(s)"
    )

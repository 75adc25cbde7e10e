"""`edgeml bench`: latency percentiles, throughput and memory, side by side with a baseline."""

from __future__ import annotations

import click
from rich.table import Table

from edgeml.benchmark import bench
from edgeml.cli.output import console, errors_handled, print_json, print_table


@click.command("bench")
@click.argument("artifact", type=click.Path())
@click.option("--baseline", type=click.Path(), default=None, help="A model file (.onnx) or artifact to compare with.")
@click.option("--threads", type=int, default=1, show_default=True, help="Inference threads.")
@click.option("--warmup", type=int, default=20, show_default=True, help="Untimed runs first.")
@click.option("--seconds", type=float, default=5.0, show_default=True, help="How long to measure.")
@click.option("--runs", type=int, default=0, show_default=True, help="Time exactly this many rounds (0: --seconds).")
@click.option("--pubkey", type=click.Path(dir_okay=False), default=None, help="Verify the artifact first.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@errors_handled
def bench_cmd(artifact, baseline, threads, warmup, seconds, runs, pubkey, as_json) -> None:
    """Benchmark ARTIFACT through the same runtime adapter the device agent uses; with --baseline, both are
    timed interleaved in one run, ratio = artifact p50 / baseline p50, and a difference within the run's
    noise (the ratio's range over 10 blocks of rounds) or under 2 % is called the same speed. `edgeml fleet
    bench` runs this same measurement on devices."""
    if not as_json:
        console.print(f"[dim]timing {f'{runs} rounds' if runs else f'for {seconds:g} s'}…[/]")
    result = bench(artifact, baseline=baseline, threads=threads, warmup=warmup, seconds=seconds, pubkey=pubkey,
                   runs=runs)  # fmt: skip
    if as_json:
        print_json(result.to_dict())
        return
    a = result.artifact
    table = Table(
        "model",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "throughput /s",
        "runs",
        "load RSS MiB",
        title=f"{a['name']} {a['version']} ({a['target']}, {a['precision']}), {threads} thread(s)",
        title_justify="left",
    )
    for name, stats in result.latency.items():
        table.add_row(
            name,
            f"{stats.p50_ms:.4f}",
            f"{stats.p90_ms:.4f}",
            f"{stats.p99_ms:.4f}",
            f"{stats.throughput_per_s:,.0f}",
            str(stats.n),
            f"{result.memory_mb.get(name + '_load', 0):.1f}",
        )
    print_table(table)
    if result.comparison is not None:
        c = result.comparison
        console.print(f"ratio (artifact p50 / baseline p50): [bold]{c.ratio:.3f}[/] — {c.describe()}")
    console.print(f"peak RSS {result.memory_mb['peak_rss']:.1f} MiB")

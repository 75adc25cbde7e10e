"""`edgeml fleet bench`: time an artifact on chosen devices (a signed bench job), wait for their answers up to
the deadline, and show the per-device table, `--json`, or an HTML report with the latency plot."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.table import Table

from edgeml.cli.fleet_common import fleet_options, open_fleet
from edgeml.cli.output import console, errors_handled, print_json, print_table

__all__ = ["bench"]

_POLL_S = 0.5


@click.command("bench")
@fleet_options
@click.argument("artifact")
@click.option("--devices", "selector", required=True, help="Which devices: all, id=cam-*, target=…, tag:k=v.")
@click.option("--baseline", default=None, help="Time this too, interleaved in the same job: name@version, sha256 "
              "or an artifact folder.")  # fmt: skip
@click.option("--seconds", type=float, default=5.0, show_default=True, help="How long each device times.")
@click.option("--runs", type=int, default=0, show_default=True, help="Time exactly this many rounds instead.")
@click.option("--warmup", type=int, default=20, show_default=True, help="Untimed runs first.")
@click.option("--threads", type=int, default=1, show_default=True, help="Inference threads on the device.")
@click.option(
    "--deadline",
    "deadline_s",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds to wait for answers; devices not answered by then are reported offline or timed out.",
)
@click.option("--json", "as_json", is_flag=True)
@click.option("--html", "html_out", type=click.Path(dir_okay=False), default=None, help="Also write an HTML report.")
@errors_handled
def bench(db, store, key, artifact, selector, baseline, seconds, runs, warmup, threads, deadline_s, as_json,
          html_out) -> None:  # fmt: skip
    """Benchmark ARTIFACT (name@version, sha256, or a local artifact folder, published first) on the devices
    SELECTOR picks, through a running `edgeml fleet serve` on the same database. Each device verifies the
    artifact, times it from a scratch folder (never touching what it serves) with the same interleaved timing
    as `edgeml bench`, and answers p50/p90/p99, throughput, peak RSS, load, CPU/ISA and runtime versions."""
    from edgeml.fleet.bench_jobs import BenchSettings

    fleet = open_fleet(db, store, key)
    spec, base = _spec(fleet, artifact), _spec(fleet, baseline) if baseline else None
    settings = BenchSettings(int(seconds * 1000), runs, warmup, threads, deadline_s)
    started = time.monotonic()
    job = fleet.bench.create(spec, selector, settings, time.time(), baseline=base)
    if not as_json:
        console.print(f"[dim]bench job {job['id']} on {len(job['results'])} device(s); deadline {deadline_s:g} s[/]")
    status = wait_for_answers(fleet, job["id"], quiet=as_json)
    status["wall_s"] = round(time.monotonic() - started, 3)
    if html_out:
        from edgeml.fleet.bench_html import bench_html

        Path(html_out).write_text(bench_html(status), encoding="utf-8")
    if as_json:
        print_json(status)
        return
    _render(status)
    if html_out:
        console.print(f"[green]✓[/] report: {html_out}")


def wait_for_answers(fleet, job_id: str, quiet: bool = False) -> dict:
    """The job settled (`BenchJobs.wait`), with a spinner counting answers unless `quiet`."""
    from edgeml.fleet.bench_jobs import FINAL_STATES

    if quiet:
        return fleet.bench.wait(job_id, _POLL_S)
    with console.status("waiting for the devices…") as spinner:

        def show(status: dict) -> None:
            answered = sum(r["state"] in FINAL_STATES for r in status["results"])
            spinner.update(f"waiting for the devices… {answered}/{len(status['results'])} answered")

        return fleet.bench.wait(job_id, _POLL_S, show)


def _spec(fleet, text: str) -> str:
    """A local artifact folder or .tar is published and named by its sha256; anything else is a spec."""
    if Path(text).exists():
        return fleet.artifacts.publish(text, time.time())["sha256"]
    return text


def _short(spec: str) -> str:
    return spec[:12] + "…" if len(spec) == 64 else spec


def _render(status: dict) -> None:
    from edgeml.fleet.bench_html import COLUMNS, device_cells

    title = f"bench {status['id']}: {_short(status['artifact'])}" + (
        f" vs {_short(status['baseline'])}" if status.get("baseline") else ""
    )
    table = Table(*COLUMNS, title=title, title_justify="left")
    for row in status["results"]:
        table.add_row(*device_cells(row))
    print_table(table)
    states: dict[str, int] = {}
    for row in status["results"]:
        states[row["state"]] = states.get(row["state"], 0) + 1
    console.print(", ".join(f"{n} {s}" for s, n in sorted(states.items())) + f" in {status['wall_s']:.1f} s")
    if any(r["state"] in ("timed_out", "offline") and not r["sent_at"] for r in status["results"]):
        console.print("[yellow]•[/] some jobs were never published: is `edgeml fleet serve` running on this database?")

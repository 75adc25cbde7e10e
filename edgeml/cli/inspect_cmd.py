"""`edgeml inspect`: an artifact's manifest as readable tables (or JSON)."""

from __future__ import annotations

import click
from rich.table import Table

from edgeml.artifact.verify import open_artifact, read_manifest
from edgeml.cli.output import errors_handled, human_size, print_json, print_table
from edgeml.compiler.explain_report import fidelity_cells


@click.command("inspect")
@click.argument("artifact", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
@errors_handled
def inspect_cmd(artifact: str, as_json: bool) -> None:
    """Show what ARTIFACT holds: identity, files, signature I/O, metrics, decision, provenance (not verified:
    use `edgeml verify` for that)."""
    with open_artifact(artifact) as root:
        m = read_manifest(root)
    if as_json:
        print_json(m)
        return
    met, prov = m["metrics"], m["provenance"]
    overview = Table.grid(padding=(0, 2))
    rows = [
        ("name", f"{m['name']} {m['version']} (release {m['release']})"),
        ("target", f"{m['target']['id']} — {m['target']['runtime']} ≥ {m['target']['runtime_min_version']}"),
        ("precision", m["precision"]),
        ("accuracy", _accuracy(met)),
        ("latency p50", _latency(met)),
        ("size", f"{human_size(met['size_bytes'])} (float {human_size(met['float_size_bytes'])})"),
        ("decision", m["decision"]["reason"]),
        (
            "source",
            f"{prov['source']['kind']} {prov['source']['location']} (sha256 {prov['source']['sha256'][:12]}…)"
            + (f", {prov['exporter']} exporter" if prov.get("exporter") else ""),
        ),
        ("calibration", f"{prov['calibration']['samples']} samples, digest {prov['calibration']['digest'][:12]}…"),
        ("signed by", m.get("signature", {}).get("key_id", "UNSIGNED")),
    ]
    for key, value in rows:
        overview.add_row(f"[bold]{key}[/]", str(value))
    print_table(overview)
    io = Table("", "name", "dtype", "shape", title="signature", title_justify="left")
    for kind in ("inputs", "outputs"):
        for t in m["io"][kind]:
            io.add_row(kind[:-1], t["name"], t["dtype"], str(t["shape"]))
    print_table(io)
    files = Table("file", "size", "sha256", title="files", title_justify="left")
    for f in m["files"]:
        files.add_row(f["path"], human_size(f["size"]), f["sha256"][:16] + "…")
    print_table(files)
    fid = None
    for out, f in met["fidelity"].items():
        cells = fidelity_cells(f)
        fid = fid or Table("output", *cells, title="fidelity vs float (over all samples)", title_justify="left")
        fid.add_row(out, *cells.values())
    if fid is not None:
        print_table(fid)


def _latency(met: dict) -> str:
    """p50, its speed against the one reference the compile judged by, and the build host it was measured on."""
    ref = met.get("speed_reference") or {"model": "float source", "speedup": met["speedup_vs_float"]}
    name = "fp32" if ref["model"] == "fp32" else "the float source"
    host, device = met["measured_on"], met.get("latency_measured_on")
    if device is not None:
        return (f"{met['latency_ms']['p50_ms']:.3f} ms ({ref['speedup']:.2f}× {name}) on device {device['device']} "
                f"{device.get('cpu', '?')} ({device.get('description', '?')})")  # fmt: skip
    return (
        f"{met['latency_ms']['p50_ms']:.3f} ms ({ref['speedup']:.2f}× {name}) on the build host "
        f"{host['cpu']} ({host.get('description') or host['arch']}), {host['threads']} thread(s)"
    )


def _accuracy(met: dict) -> str:
    if met["accuracy"] is None:
        return "no labels (see fidelity)"
    return f"{met['accuracy']:.2f}% (float {met['float_accuracy']:.2f}%, drop {met['accuracy_drop']:.2f} points)"

"""`edgeml-agent`: write a config, run the agent, show its status. A thin layer over `Agent`,
`render_config` and `read_status`; imports nothing of the compiler.

    edgeml-agent init --device-id cam-042 --target cpu-ort --broker mqtt://fleet.local:1883 \\
        --pubkey fleet.pub --state-dir /var/lib/edgeml > /etc/edgeml/agent.toml
    edgeml-agent run --config /etc/edgeml/agent.toml
    edgeml-agent status --config /etc/edgeml/agent.toml [--json]
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from edgeml.atomic_files import write_bytes_atomic
from edgeml.cli_errors import errors_handled
from edgeml.device_agent.config.agent_config import load_config
from edgeml.device_agent.config.config_template import render_config

__all__ = ["main"]

_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="EDGEML_AGENT_CONFIG",
    help="agent.toml (default: $EDGEML_AGENT_CONFIG; without one, EDGEML_AGENT_* variables only)",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
def main(verbose: int) -> None:
    """The edgeml device agent: serves the committed model, installs signed updates, reports telemetry."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command("init")
@click.option("--device-id", required=True, help="This device's id in the fleet.")
@click.option("--target", required=True, help="The edgeml target this device runs, e.g. cpu-ort.")
@click.option("--broker", required=True, help="mqtt://HOST[:PORT] or mqtts://HOST[:PORT].")
@click.option("--pubkey", required=True, type=click.Path(dir_okay=False), help="The fleet's public key (PEM).")
@click.option("--state-dir", default="/var/lib/edgeml", show_default=True, help="Where the agent keeps its state.")
@click.option("--ca-file", help="TLS: CA bundle of the broker.")
@click.option("--cert-file", help="TLS: client certificate.")
@click.option("--key-file", help="TLS: client certificate key.")
@click.option("--listen", default="", help="Local endpoint: http://127.0.0.1:PORT or unix:///PATH (default off).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the config here (mode 0600) instead of stdout.")
@errors_handled
def init_cmd(device_id: str, target: str, broker: str, pubkey: str, state_dir: str, ca_file: str | None,
             cert_file: str | None, key_file: str | None, listen: str, out: str | None) -> None:  # fmt: skip
    """Print a complete, commented agent.toml for these settings, or write it with --out. The config may hold
    the broker password, so a file it goes into (--out, or stdout redirected to a file) is made 0600."""
    values: dict[tuple[str, str], Any] = {
        ("agent", "device_id"): device_id, ("agent", "target"): target,
        ("agent", "state_dir"): _absolute(state_dir), ("agent", "fleet_public_key"): _absolute(pubkey),
        ("broker", "url"): broker,
    }  # fmt: skip
    for key, value in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file)):
        if value:
            values[("broker", key)] = _absolute(value)
    if listen:
        values[("endpoint", "listen")] = listen
    text = render_config(values)
    _check_renders(text)
    if not Path(pubkey).is_file():
        click.echo(f"warning: {pubkey} does not exist yet; the agent needs it to start", err=True)
    if out is not None:
        write_bytes_atomic(out, text.encode(), mode=0o600)
        click.echo(f"wrote {out} (mode 0600: only its owner may read it; it may hold the broker password)", err=True)
        return
    click.echo(text, nl=False)
    _private_if_file(sys.stdout)


def _private_if_file(stream: Any) -> None:
    """If `stream` was redirected into a regular file, make that file readable by its owner only (0600)."""
    try:
        fd = stream.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            stream.flush()
            os.fchmod(fd, 0o600)
            click.echo("made the file stdout goes to mode 0600 (only its owner may read it: it may hold the "
                       "broker password)", err=True)  # fmt: skip
    except (OSError, ValueError, AttributeError):  # a pipe, a terminal, a captured stream: nothing to protect here
        pass


@main.command("run")
@_CONFIG
@errors_handled
def run_cmd(config_path: str | None) -> None:
    """Run the agent in the foreground until SIGTERM or Ctrl-C."""
    from edgeml.device_agent.agent import Agent

    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    done = threading.Event()  # NOTE: before the agent starts: a SIGTERM while it starts is kept, not fatal
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    agent = Agent.from_config(config_path).start()
    while not done.wait(1.0):
        pass
    agent.stop()


@main.command("status")
@_CONFIG
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts.")
@errors_handled
def status_cmd(config_path: str | None, as_json: bool) -> None:
    """Show the lifecycle state, slots and versions, the update under way, spool size and last telemetry."""
    from edgeml.device_agent.agent_status import read_status

    status = read_status(load_config(config_path))
    if as_json:
        click.echo(json.dumps(status, indent=2, sort_keys=True, default=str))
        return
    _render_status(status)


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _check_renders(text: str) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(text)
        f.flush()
        load_config(f.name, env={})  # the same checks `run` will make


def _render_status(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    proc = s["process"]
    running = f"running (pid {proc.get('pid')}, {'connected' if proc.get('connected') else 'offline'})"
    console.print(f"[bold]{s['device_id']}[/] ({s['target']}) · broker {s['broker']} · agent "
                  f"{running if proc.get('running') else 'not running'}")  # fmt: skip
    console.print(f"lifecycle [bold]{s['lifecycle']}[/] · active slot {s.get('active') or '—'} · highest release "
                  f"{s.get('committed_release') or '—'}")  # fmt: skip
    table = Table("slot", "model", "version", "release", "artifact")
    for name, slot in sorted(s.get("slots", {}).items()):
        mark = " (active)" if name == s.get("active") else ""
        if slot is None:
            table.add_row(name + mark, "—", "", "", "")
        else:
            artifact = (slot.get("artifact") or slot["manifest_digest"])[:12] + "…"
            table.add_row(name + mark, slot["name"], slot["version"], str(slot["release"]), artifact)
    console.print(table)
    _render_details(console, s)


def _render_details(console: Any, s: dict[str, Any]) -> None:
    update = s.get("update")
    if update:
        console.print(f"update: {update.get('name')} {update.get('version')} (release {update.get('release')}), "
                      f"{update.get('received', 0)}/{update.get('chunks', '?')} chunks")  # fmt: skip
    spool = s["spool"]
    console.print(f"spool: {spool['messages']} message(s), {_size(spool['bytes'])} of {_size(spool['max_bytes'])}")
    t = s.get("last_telemetry")
    if t:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t["period_end"]))
        latency = f"p50 {_ms(t.get('p50_ms'))}, p99 {_ms(t.get('p99_ms'))}"
        console.print(f"last telemetry: #{t['seq']} at {when}, {t['calls']} calls, {t['errors']} errors, {latency}, "
                      f"{_size(t['bytes'])}, {t['delivery']}")  # fmt: skip
    else:
        console.print("last telemetry: none yet")
    failure = s.get("last_failure")
    if failure:
        console.print(f"last failure: [{failure['code']}] {failure['reason']}", markup=False)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} ms"


if __name__ == "__main__":
    main()

"""`edgeml fleet serve --http HOST:PORT` and `edgeml fleet http`: the fleet's HTTP API (docs/openapi.yaml).

The API never starts without an operator token (from a file, or EDGEML_FLEET_HTTP_TOKEN); an optional
read token may only GET. `edgeml fleet http` serves the API alone on the database, beside a running
`edgeml fleet serve` (as every other fleet command does).
"""

from __future__ import annotations

import signal
import threading

import click

from edgeml.cli.fleet_common import fleet_options, open_fleet
from edgeml.cli.output import console, errors_handled

__all__ = ["StopRequest", "http", "http_options", "start_http"]

TOKEN_ENV, READ_TOKEN_ENV = "EDGEML_FLEET_HTTP_TOKEN", "EDGEML_FLEET_HTTP_READ_TOKEN"


def http_options(prefix: str):
    """--{prefix}token-file, --{prefix}read-token-file, --{prefix}max-upload-mb."""

    def decorate(fn):
        fn = click.option(
            f"--{prefix}max-upload-mb",
            "max_upload_mb",
            type=click.IntRange(min=1),
            default=1024,
            show_default=True,
            help="Largest artifact upload (POST /v1/artifacts) the API accepts.",
        )(fn)
        fn = click.option(
            f"--{prefix}read-token-file",
            "read_token_file",
            type=click.Path(dir_okay=False),
            help=f"File holding a read-only token: GET routes only (or {READ_TOKEN_ENV}).",
        )(fn)
        return click.option(
            f"--{prefix}token-file",
            "token_file",
            type=click.Path(dir_okay=False),
            help=f"File holding the HTTP API's operator token (or {TOKEN_ENV}). Required with the API.",
        )(fn)

    return decorate


def start_http(listen, db, store, key, token_file, read_token_file, max_upload_mb, flag="--http-token-file"):
    """Check the address and tokens, open the fleet, start the API; return it (its `.url`, `.stop()`)."""
    from edgeml.fleet.api_tokens import MAKE_TOKEN, ApiTokens, read_token
    from edgeml.fleet.database import FleetError
    from edgeml.fleet.http_api import FleetHttpApi

    host, port = parse_listen(listen)
    operator = read_token(token_file, TOKEN_ENV)
    if operator is None:
        raise FleetError(
            "the HTTP API needs an operator token: it never serves without one",
            f"make one ({MAKE_TOKEN}) and pass {flag} fleet-http.token, or set {TOKEN_ENV}",
        )
    tokens = ApiTokens(operator, read_token(read_token_file, READ_TOKEN_ENV))
    api = FleetHttpApi(open_fleet(db, store, key), tokens, host, port, max_upload_bytes=max_upload_mb << 20)
    api.start()
    if host not in ("127.0.0.1", "localhost"):
        console.print(
            f"[yellow]•[/] the HTTP API listens on {host}, beyond this machine, without TLS: "
            "put it behind a TLS reverse proxy so tokens never cross the network in clear"
        )
    return api


def parse_listen(text: str) -> tuple[str, int]:
    from edgeml.fleet.database import FleetError

    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or ":" in host or not 0 <= int(port) <= 65535:
        raise FleetError(f"listen address {text!r} is not HOST:PORT", "e.g. 127.0.0.1:8080 (IPv4)")
    return host or "0.0.0.0", int(port)


@click.command("http")
@fleet_options
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to serve the API on.")
@http_options("")
@errors_handled
def http(db, store, key, listen, token_file, read_token_file, max_upload_mb) -> None:
    """Serve only the HTTP API on the fleet database (beside a running `edgeml fleet serve`); Ctrl-C stops."""
    stop = StopRequest()  # NOTE: before the API serves, so a SIGTERM from then on stops it cleanly
    api = start_http(listen, db, store, key, token_file, read_token_file, max_upload_mb, flag="--token-file")
    console.print(f"[green]✓[/] fleet HTTP API on {api.url} (database {db}); Ctrl-C stops")
    stop.wait()
    api.stop()


class StopRequest:
    """SIGTERM, caught from the moment this is made. A service makes it before it starts anything: a SIGTERM
    that arrives while it is starting (its API may already answer) is kept, and `wait` returns at once, so the
    service stops what it started and exits 0 instead of being killed half-started."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: self._requested.set())

    def wait(self) -> None:
        """Block until SIGTERM (already received, or to come) or Ctrl-C."""
        try:
            while not self._requested.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass

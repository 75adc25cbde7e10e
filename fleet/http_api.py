"""The fleet's HTTP API: JSON over the standard library's threading HTTP server, bearer-token auth.

Every request: match a route (http_routes.py), authenticate (anything but /v1/health needs a token, and
before a 404 is told), authorize (the read token may only GET), run the handler on a thread of the
server, answer JSON. Failures are JSON too, `{"error", "message", "fix"}`: FleetError → 400, its
not-found kind → 404, conflict → 409, a busy database → 503; anything unexpected → 500 with a request id,
its traceback only in the log. The API opens its own `Fleet` on the database (as the CLI does), beside
the service's: SQLite (WAL) serialises the writers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import edgeml
from edgeml.errors import EdgemlError
from edgeml.fleet.api_request import ApiError, ApiRequest
from edgeml.fleet.api_tokens import ApiTokens
from edgeml.fleet.database import FleetBusyError, FleetConflictError, FleetNotFoundError
from edgeml.fleet.http_routes import OPERATOR, PUBLIC, ROUTES, Route

if TYPE_CHECKING:
    from edgeml.fleet.fleet_service import Fleet

__all__ = ["MAX_JSON_BYTES", "MAX_UPLOAD_BYTES", "FleetHttpApi"]

log = logging.getLogger(__name__)
MAX_JSON_BYTES = 1 << 20
MAX_UPLOAD_BYTES = 1 << 30
DRAIN_BYTES = 16 << 20  # NOTE: read at most this much of a refused body, so the client gets the answer, not a reset
_FALLBACK_FIX = "see docs/openapi.yaml for what this route takes"
_KINDS: tuple[tuple[type, int, str], ...] = (
    (FleetNotFoundError, 404, "not_found"),
    (FleetConflictError, 409, "conflict"),
    (FleetBusyError, 503, "busy"),
    (EdgemlError, 400, "invalid"),
)


class FleetHttpApi:
    """`start()` serves on host:port (port 0: any free one; see `.url`) until `stop()`."""

    def __init__(
        self,
        fleet: Fleet,
        tokens: ApiTokens,
        host: str = "127.0.0.1",
        port: int = 8080,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        routes: tuple[Route, ...] = ROUTES,
    ) -> None:
        self.fleet, self.tokens, self.routes = fleet, tokens, routes
        self.max_upload_bytes = max_upload_bytes
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._server = ThreadingHTTPServer(self._address, _Handler)
        except OSError as exc:
            raise EdgemlError(
                f"cannot listen on {self._address[0]}:{self._address[1]} for the HTTP API: {exc.strerror}",
                "choose another --http address or port, or stop what uses it",
            ) from exc
        self._server.daemon_threads = True
        self._server.api = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="edgeml-fleet-http", daemon=True)
        self._thread.start()
        log.info("fleet HTTP API listening on %s", self.url)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, req: ApiRequest) -> tuple[int, Any]:
        """Route, authenticate, authorize and run one request; raise ApiError or a FleetError to refuse it."""
        route = self._route(req)
        if route.access != PUBLIC:
            req.role = self._authenticate(req)
            if route.access == OPERATOR and req.role != OPERATOR:
                raise ApiError(
                    403,
                    "forbidden",
                    f"{req.method} {req.path} needs the operator token",
                    "this token may only read (GET)",
                )
        return route.handler(self.fleet, req)

    def _route(self, req: ApiRequest) -> Route:
        path = req.path.rstrip("/") or "/"
        allowed = []
        for route in self.routes:
            m = route.pattern.match(path)
            if m and route.method == req.method:
                req.params = {k: unquote(v) for k, v in m.groupdict().items()}
                return route
            if m:
                allowed.append(route.method)
        self._authenticate(req)  # NOTE: no route list for callers without a token
        if allowed:
            raise ApiError(
                405,
                "method_not_allowed",
                f"{req.path} takes {', '.join(allowed)}, not {req.method}",
                f"call it with {' or '.join(allowed)} (see docs/openapi.yaml)",
                headers={"Allow": ", ".join(allowed)},
            )
        raise ApiError(404, "not_found", f"no route {req.method} {req.path}", "see docs/openapi.yaml")

    def _authenticate(self, req: ApiRequest) -> str:
        role = self.tokens.role(req.headers.get("Authorization"))
        if role is None:
            missing = not req.headers.get("Authorization")
            raise ApiError(
                401,
                "unauthorized",
                "no bearer token" if missing else "the bearer token is not valid",
                "send Authorization: Bearer <token> with the token the fleet was started with",
                headers={"WWW-Authenticate": 'Bearer realm="edgeml-fleet"'},
            )
        return role


def error_reply(exc: BaseException, request_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """An exception → (status, JSON error body, extra headers); unexpected ones are logged with traceback."""
    if isinstance(exc, ApiError):
        return exc.status, exc.body(), exc.headers
    for kind, status, code in _KINDS:
        if isinstance(exc, kind):
            headers = {"Retry-After": "1"} if status == 503 else {}
            fix = exc.hint or _FALLBACK_FIX  # NOTE: every fleet error has a hint (a test checks); others may not
            return status, {"error": code, "message": exc.message, "fix": fix}, headers
    log.error("HTTP API request %s failed", request_id, exc_info=exc)
    body = {"error": "internal", "message": f"internal error (request {request_id})", "fix": "see the fleet's log"}
    return 500, body, {}


class _Handler(BaseHTTPRequestHandler):
    timeout = 60  # NOTE: a client that stops sending mid-request frees its thread

    def version_string(self) -> str:
        return f"edgeml-fleet/{edgeml.__version__}"  # NOTE: not the Python version, as the default tells

    def _dispatch(self) -> None:
        api: FleetHttpApi = self.server.api  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        req = ApiRequest(
            self.command,
            url.path,
            self.headers,
            self.rfile,
            MAX_JSON_BYTES,
            api.max_upload_bytes,
            query=parse_qs(url.query, keep_blank_values=True),
        )
        request_id, headers = uuid.uuid4().hex[:12], {}
        try:
            status, body = api.handle(req)
        except Exception as exc:
            status, body, headers = error_reply(exc, request_id)
        self._send(status, body, headers | {"X-Request-Id": request_id})
        self._drain(req.unread())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _not_allowed(self) -> None:
        """TRACE, CONNECT, OPTIONS: methods HTTP defines that no route takes (405, not the server's 501)."""
        allowed = ", ".join(sorted({r.method for r in self.server.api.routes}))  # type: ignore[attr-defined]
        message = f"{self.command} is not allowed on this API"
        body = {"error": "method_not_allowed", "message": message, "fix": f"use {allowed} (see docs/openapi.yaml)"}
        self.close_connection = True
        self._send(405, body, {"Allow": allowed, "Connection": "close", "X-Request-Id": uuid.uuid4().hex[:12]})

    do_TRACE = do_CONNECT = do_OPTIONS = _not_allowed

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = json.dumps(_finite(body), default=str).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Cache-Control": "no-store", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _drain(self, n: int) -> None:
        if 0 < n <= DRAIN_BYTES:
            with contextlib.suppress(OSError):
                while n > 0 and (chunk := self.rfile.read(min(n, 1 << 20))):
                    n -= len(chunk)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The server's own refusals (a malformed request line, an unknown method) as JSON too."""
        self.close_connection = True
        self.request_version = self.protocol_version  # NOTE: a garbled request line still gets status and headers
        fix = explain or "send an HTTP/1.1 request as docs/openapi.yaml describes"
        body = {"error": "bad_request" if code < 500 else "unsupported", "message": message or "", "fix": fix}
        self._send(code, body, {"Connection": "close"})

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def _finite(value: Any) -> Any:
    """NaN and infinities → null: strict JSON parsers refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value

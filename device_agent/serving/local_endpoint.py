"""A local HTTP endpoint over loopback TCP or a Unix socket, so programs that are not Python (C, C++, Go,
a shell with curl) can call the agent's predict. Off by default; never listens beyond this machine.

    POST /v1/predict   {"inputs": {name: tensor}, "request_id": optional, "encoding": "list" | "b64"}
                       → {"request_id", "latency_ms", "model", "outputs": {name: tensor}}
    POST /v1/feedback  {"request_id", "label", "output": optional} → {"accepted": bool}
    GET  /v1/status    the agent's status report
    GET  /v1/health    {"ok": true, "serving": model or null}

A tensor is {"dtype": "float32", "shape": [1, 1, 8, 8], "data": [...]} (nested or flat list) or, cheaper for
large inputs, {"dtype", "shape", "b64": base64 of the raw little-endian bytes}. Outputs come back in
the request's `encoding` (default "list"). Errors are JSON {"error", "hint", "code"} with status 400
(bad request), 404, 413 (body over max_body_bytes) or 503 (no model committed yet).

    curl --unix-socket /run/edgeml/agent.sock -d @request.json http://agent/v1/predict
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import socket
import socketserver
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from edgeml.device_agent.serving.prediction import PredictError
from edgeml.errors import EdgemlError

__all__ = ["ListenAddress", "LocalEndpoint", "parse_listen"]

log = logging.getLogger(__name__)

_LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class ListenAddress:
    kind: str  # "http" | "unix"
    host: str = ""
    port: int = 0
    path: str = ""


def parse_listen(value: str) -> ListenAddress | None:
    """'' → None (off); http://127.0.0.1:PORT or unix:///PATH → the address; ValueError otherwise."""
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme == "unix" and parsed.path:
        return ListenAddress("unix", path=parsed.path)
    if parsed.scheme == "http" and parsed.hostname:
        if not _is_loopback(parsed.hostname):
            raise ValueError(f"{parsed.hostname} is not a loopback address: the endpoint serves this machine only")
        try:
            port = parsed.port
        except ValueError:
            port = None
        if port is None:
            raise ValueError("give a port: http://127.0.0.1:PORT")
        return ListenAddress("http", host=parsed.hostname, port=port)
    raise ValueError(f"{value!r} is not http://127.0.0.1:PORT or unix:///PATH/agent.sock")


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _TcpHTTPServer(ThreadingHTTPServer):
    daemon_threads = True


class _TcpHTTPServer6(_TcpHTTPServer):
    address_family = socket.AF_INET6


class LocalEndpoint:
    def __init__(self, agent: Any, listen: str, max_body_bytes: int = 16 << 20) -> None:
        address = parse_listen(listen)
        if address is None:
            raise ValueError("the local endpoint is off (empty listen address)")
        self.agent = agent
        self.address = address
        self.max_body_bytes = max_body_bytes
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.address.kind == "unix":
            return f"unix://{self.address.path}"
        host, port = self._server.server_address[:2] if self._server else (self.address.host, self.address.port)
        return f"http://{host}:{port}"

    def start(self) -> None:
        handler = _handler_for(self)
        if self.address.kind == "unix":
            path = Path(self.address.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # a socket left by a previous run
            self._server = _UnixHTTPServer(str(path), handler)
            os.chmod(path, 0o660)
        else:
            server = _TcpHTTPServer6 if ":" in self.address.host else _TcpHTTPServer
            self._server = server((self.address.host, self.address.port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="edgeml-agent-endpoint", daemon=True)
        self._thread.start()
        log.info("local endpoint listening on %s", self.url)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self.address.kind == "unix":
            Path(self.address.path).unlink(missing_ok=True)
        self._server = None


class _BadRequest(EdgemlError):
    def __init__(self, status: int, message: str, hint: str | None = None, code: str = "bad_request") -> None:
        super().__init__(message, hint)
        self.status, self.code = status, code


def _handler_for(endpoint: LocalEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "edgeml-agent"

        def do_GET(self) -> None:
            routes = {"/v1/status": lambda: endpoint.agent.status(), "/v1/health": lambda: _health(endpoint.agent)}
            self._answer(lambda: routes[self.path]() if self.path in routes else _not_found(self.path))

        def do_POST(self) -> None:
            routes = {"/v1/predict": _predict, "/v1/feedback": _feedback}
            route = routes.get(self.path)
            self._answer(lambda: route(endpoint.agent, self._body()) if route else _not_found(self.path))

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if length > endpoint.max_body_bytes:
                raise _BadRequest(413, f"request body is {length} bytes, over {endpoint.max_body_bytes}",
                                  "send large tensors as b64, or raise [endpoint] max_body_bytes")  # fmt: skip
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError as exc:
                raise _BadRequest(400, f"request body is not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise _BadRequest(400, "request body is not a JSON object")
            return body

        def _answer(self, produce: Any) -> None:
            try:
                status, body = 200, produce()
            except _BadRequest as exc:
                status, body = exc.status, {"error": exc.message, "hint": exc.hint, "code": exc.code}
            except PredictError as exc:
                status = 503 if exc.code == "no_model" else 400
                body = {"error": exc.message, "hint": exc.hint, "code": exc.code}
            except Exception as exc:  # a bug must not take the endpoint down
                log.exception("local endpoint request failed")
                status, body = 500, {"error": f"{type(exc).__name__}: {exc}", "hint": None, "code": "internal"}
            data = json.dumps(body, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def address_string(self) -> str:
            return "unix" if endpoint.address.kind == "unix" else super().address_string()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("endpoint %s " + format, self.address_string(), *args)

    return Handler


def _not_found(path: str) -> Any:
    raise _BadRequest(404, f"no such endpoint {path}", "use /v1/predict, /v1/feedback, /v1/status or /v1/health",
                      "not_found")  # fmt: skip


def _health(agent: Any) -> dict[str, Any]:
    serving = agent.serving
    return {"ok": True, "serving": serving.model.to_dict() if serving else None}


def _predict(agent: Any, body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        raise _BadRequest(400, 'predict needs "inputs": {name: {"dtype", "shape", "data" or "b64"}}')
    encoding = body.get("encoding", "list")
    if encoding not in ("list", "b64"):
        raise _BadRequest(400, f'encoding {encoding!r} is not "list" or "b64"')
    feeds = {str(name): _tensor(name, t) for name, t in inputs.items()}
    result = agent.predict(feeds, request_id=body.get("request_id"))
    serving = agent.serving
    return {
        "request_id": result.request_id,
        "latency_ms": result.latency_ms,
        "model": serving.model.to_dict() if serving else None,
        "outputs": {name: _encode(np.asarray(v), encoding) for name, v in result.items()},
    }


def _feedback(agent: Any, body: dict[str, Any]) -> dict[str, Any]:
    if "request_id" not in body or "label" not in body:
        raise _BadRequest(400, 'feedback needs "request_id" and "label"')
    try:
        accepted = agent.feedback(body["request_id"], body["label"], body.get("output"))
    except ValueError as exc:
        raise _BadRequest(400, str(exc)) from None
    return {"accepted": accepted}


def _tensor(name: str, t: Any) -> np.ndarray:
    if not isinstance(t, dict) or "dtype" not in t or "shape" not in t:
        raise _BadRequest(400, f'input {name!r} is not {{"dtype", "shape", "data" or "b64"}}')
    try:
        dtype, shape = np.dtype(t["dtype"]), tuple(int(d) for d in t["shape"])
        if "b64" in t:
            array = np.frombuffer(base64.b64decode(t["b64"], validate=True), dtype=dtype.newbyteorder("<"))
        else:
            array = np.asarray(t["data"], dtype=dtype)
        return array.astype(dtype, copy=False).reshape(shape)
    except (TypeError, ValueError, KeyError) as exc:
        raise _BadRequest(400, f"input {name!r} cannot be read as {t.get('dtype')} {t.get('shape')}: {exc}") from None


def _encode(array: np.ndarray, encoding: str) -> dict[str, Any]:
    head = {"dtype": array.dtype.name, "shape": list(array.shape)}
    if encoding == "b64":
        return head | {"b64": base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode()}
    return head | {"data": array.tolist()}

"""The local endpoint for programs that are not Python: predict, feedback, status and health over loopback
HTTP or a Unix socket; bad requests get a JSON error naming the problem."""

from __future__ import annotations

import base64
import http.client
import json
import socket

import numpy as np
import pytest

from edgeml.transport.memory_transport import MemoryBroker, MemoryTransport

DEVICE = "cam-042"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("agent")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def _call(connect, method, path, body=None):
    conn = connect()
    conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                 headers={"Content-Type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return response.status, data


@pytest.fixture
def endpoint_agent(make_config, running_agents, preinstall, digits_artifact, tmp_path, request):
    listen = request.param if hasattr(request, "param") else "http://127.0.0.1:0"
    if listen == "unix":
        listen = f"unix://{tmp_path}/run/agent.sock"
    config = make_config(endpoint={"listen": listen, "max_body_bytes": 64 * 1024})
    preinstall(config, digits_artifact)
    agent = running_agents.start(config, MemoryTransport(MemoryBroker(), DEVICE))
    endpoint = agent._endpoint
    if endpoint.address.kind == "unix":
        return agent, lambda: UnixHTTPConnection(endpoint.address.path)
    host, port = endpoint._server.server_address[:2]
    return agent, lambda: http.client.HTTPConnection(host, port, timeout=5)


@pytest.mark.parametrize("endpoint_agent", ["http://127.0.0.1:0", "unix"], indirect=True)
def test_predict_and_feedback(endpoint_agent):
    agent, connect = endpoint_agent
    x = np.zeros((1, 1, 8, 8), np.float32)
    tensor = {"dtype": "float32", "shape": [1, 1, 8, 8], "data": x.tolist()}
    status, body = _call(connect, "POST", "/v1/predict", {"inputs": {"input": tensor}})
    assert status == 200, body
    logits = np.asarray(body["outputs"]["logits"]["data"], np.float32)
    assert np.allclose(logits, agent.predict({"input": x})["logits"], atol=1e-6)
    assert body["model"]["version"] == "1.2.3" and body["latency_ms"] > 0
    status, fed = _call(connect, "POST", "/v1/feedback", {"request_id": body["request_id"],
                                                          "label": int(logits.argmax())})  # fmt: skip
    assert (status, fed) == (200, {"accepted": True})
    raw = {"dtype": "float32", "shape": [1, 1, 8, 8], "b64": base64.b64encode(x.tobytes()).decode()}
    status, body = _call(connect, "POST", "/v1/predict", {"inputs": {"input": raw}, "encoding": "b64",
                                                          "request_id": "frame-17"})  # fmt: skip
    out = np.frombuffer(base64.b64decode(body["outputs"]["logits"]["b64"]), np.float32).reshape(1, 10)
    assert status == 200 and body["request_id"] == "frame-17" and np.allclose(out, logits)
    assert _call(connect, "GET", "/v1/health")[1]["serving"]["version"] == "1.2.3"
    status, report = _call(connect, "GET", "/v1/status")
    assert status == 200 and report["lifecycle"] == "committed" and report["device_id"] == DEVICE


def test_bad_requests_get_json_errors(endpoint_agent):
    agent, connect = endpoint_agent
    cases = [
        ("/v1/predict", {}, 400, "predict needs"),
        ("/v1/predict", {"inputs": {"input": {"dtype": "float32", "shape": [1, 1, 8, 8], "data": [1, 2]}}}, 400,
         "cannot be read as float32"),
        ("/v1/predict", {"inputs": {"nope": {"dtype": "float32", "shape": [1], "data": [1]}}}, 400, "failed on this"),
        ("/v1/feedback", {"label": 1}, 400, "needs \"request_id\""),
        ("/v1/nothing", {}, 404, "no such endpoint"),
        ("/v1/predict", {"inputs": {"input": {"dtype": "float32", "shape": [1], "data": [0.0] * 20000}}}, 413,
         "over 65536"),
    ]  # fmt: skip
    for path, body, status, message in cases:
        got, error = _call(connect, "POST", path, body)
        assert got == status and message in error["error"], (path, error)
    assert agent.predict({"input": np.zeros((1, 1, 8, 8), np.float32)})  # still serving


def test_only_loopback_addresses_are_accepted():
    from edgeml.device_agent.serving.local_endpoint import parse_listen

    assert parse_listen("") is None
    assert parse_listen("http://[::1]:9000").port == 9000
    for bad in ("http://0.0.0.0:80", "http://192.168.1.4:80", "tcp://127.0.0.1:1", "http://127.0.0.1"):
        with pytest.raises(ValueError):
            parse_listen(bad)

"""The fleet's HTTP API as dashboards and CI use it: a real server on a free port against a real fleet
database, driven with urllib; every answer is checked against docs/openapi.yaml, whose routes must equal the
server's. Then `edgeml fleet serve --http` and `edgeml fleet http` as processes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from edgeml.artifact import pack
from edgeml.fleet.api_tokens import ApiTokens
from edgeml.fleet.database import FleetBusyError, FleetError
from edgeml.fleet.http_api import FleetHttpApi
from edgeml.fleet.http_routes import EXPERIMENT_DEFAULTS, ROLLOUT_DEFAULTS, ROUTES
from edgeml.protocol import Hello

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text())
OPERATOR, READER = "operator-token-0123456789abcdef", "reader-token-0123456789abcdef"


@pytest.fixture
def api(fleet):
    server = FleetHttpApi(fleet, ApiTokens(OPERATOR, READER), "127.0.0.1", 0, max_upload_bytes=4 << 20)
    server.start()
    yield server
    server.stop()


def call(api, method, path, body=None, token=OPERATOR, data=None, content_type=None, check=True):
    """(status, JSON body, headers); the answer must be one docs/openapi.yaml lists for that route."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        data, content_type = json.dumps(body).encode(), content_type or "application/json"
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(api.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            status, raw, got = r.status, r.read(), r.headers
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), exc.headers
    assert got["Content-Type"] == "application/json"
    answer = json.loads(raw)
    if check:
        check_against_spec(method, path.split("?")[0], status, answer)
    return status, answer, got


def check_against_spec(method: str, path: str, status: int, body) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    route = next((r for r in ROUTES if r.method == method and r.pattern.match(path)), None)
    if route is None:
        pointer = "#/components/schemas/Error"
    else:
        responses = SPEC["paths"][route.template][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {route.template} answered {status}: not in docs/openapi.yaml"
        ref = responses[str(status)].get("$ref")
        escaped = route.template.replace("~", "~0").replace("/", "~1")
        pointer = ref or f"#/paths/{escaped}/{method.lower()}/responses/{status}"
        pointer += "/content/application~1json/schema"
    registry = Registry().with_resource("urn:openapi", Resource(SPEC, specification=DRAFT202012))
    Draft202012Validator({"$ref": "urn:openapi" + pointer}, registry=registry).validate(body)


def register(fleet, n, target="cpu-ort", prefix="cam", tags=None):
    for i in range(n):
        device_id = f"{prefix}-{i:02d}"
        fleet.devices.on_hello(Hello(device_id, target, "0.1.0", 1 << 30, {"onnxruntime": "1.32.0"}), time.time())
        if tags:
            fleet.devices.set_tags(device_id, tags)


def tar_of(folder: Path, tmp_path: Path) -> bytes:
    return pack(folder, tmp_path / f"{folder.name}-{time.monotonic_ns()}.tar").read_bytes()


def publish(api, folder: Path, tmp_path: Path) -> dict:
    status, body, _ = call(
        api, "POST", "/v1/artifacts", data=tar_of(folder, tmp_path), content_type="application/x-tar"
    )
    assert status in (200, 201), body
    return body


# --- the spec and the server agree -------------------------------------------------------------------


def test_the_openapi_spec_is_valid():
    from openapi_spec_validator import validate

    validate(SPEC)


def test_the_spec_documents_exactly_the_servers_routes():
    methods = ("get", "put", "post", "delete", "patch")
    documented = {(m.upper(), path) for path, item in SPEC["paths"].items() for m in item if m in methods}
    served = {(r.method, r.template) for r in ROUTES}
    assert documented == served, f"only in the spec: {documented - served}; only served: {served - documented}"


def test_api_defaults_are_the_clis_and_the_specs():
    from edgeml.cli.fleet_experiment_cmd import experiment
    from edgeml.cli.fleet_rollout_cmd import rollout

    cli = {p.name: p.default for p in rollout.commands["create"].params}
    same = ("canary", "waves", "bake", "deadline", "min_sample", "allow_rollback")
    assert {k: cli[k] for k in same} | {"gates": []} == ROLLOUT_DEFAULTS
    cli = {p.name: p.default for p in experiment.commands["create"].params}
    assert {"split": cli["split"], "metrics": cli["metrics"]} == EXPERIMENT_DEFAULTS
    schemas = SPEC["components"]["schemas"]
    for schema, defaults in (("RolloutCreate", ROLLOUT_DEFAULTS), ("ExperimentCreate", EXPERIMENT_DEFAULTS)):
        assert {k: schemas[schema]["properties"][k]["default"] for k in defaults} == defaults


# --- auth --------------------------------------------------------------------------------------------


def test_health_is_open_and_everything_else_needs_the_token(api):
    status, body, _ = call(api, "GET", "/v1/health", token=None)
    assert status == 200 and body["ok"] and body["api"] == "v1"
    for token in (None, "wrong-token-0123456789abcdef", OPERATOR[:-1]):
        status, body, headers = call(api, "GET", "/v1/devices", token=token)
        assert status == 401 and body["error"] == "unauthorized" and "Bearer" in headers["WWW-Authenticate"]
    assert call(api, "GET", "/v1/no-such-route", token=None)[0] == 401  # NOTE: no route list without a token
    assert call(api, "GET", "/v1/no-such-route")[0] == 404


def test_the_read_token_reads_but_never_changes(api, fleet):
    register(fleet, 2)
    status, body, _ = call(api, "GET", "/v1/stats", token=READER)
    assert status == 200 and body["devices"] == {"total": 2, "online": 2}
    status, body, _ = call(api, "POST", "/v1/rollouts", {"artifact": "x@1", "to": "all"}, token=READER)
    assert status == 403 and body["error"] == "forbidden"


def test_tokens_are_long_enough_and_distinct():
    with pytest.raises(FleetError, match="at least 16"):
        ApiTokens("short")
    with pytest.raises(FleetError, match="equals"):
        ApiTokens(OPERATOR, OPERATOR)


# --- artifacts ---------------------------------------------------------------------------------------


def test_publish_an_uploaded_artifact_as_the_cli_would(api, releases, tmp_path):
    folder = releases["1.2.3"]
    status, body, _ = call(
        api, "POST", "/v1/artifacts", data=tar_of(folder, tmp_path), content_type="application/x-tar"
    )
    assert status == 201 and body["name"] == "digits" and body["version"] == "1.2.3"
    assert body["sha256"] == hashlib.sha256(tar_of(folder, tmp_path)).hexdigest()  # the CLI's digest
    made_by_hand = io.BytesIO()
    with tarfile.open(fileobj=made_by_hand, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    status, again, _ = call(api, "POST", "/v1/artifacts", data=made_by_hand.getvalue(), content_type="application/gzip")
    assert status == 200 and again["sha256"] == body["sha256"]
    assert [a["sha256"] for a in call(api, "GET", "/v1/artifacts")[1]["artifacts"]] == [body["sha256"]]
    status, detail, _ = call(api, "GET", f"/v1/artifacts/{body['sha256']}")
    assert status == 200 and detail["manifest"]["version"] == "1.2.3"
    assert call(api, "GET", "/v1/artifacts/" + "0" * 64)[0] == 404


def test_a_tampered_or_unreadable_upload_is_refused(api, releases, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(releases["1.2.3"], tampered)
    model = next(p for p in tampered.iterdir() if p.suffix == ".onnx")
    model.write_bytes(model.read_bytes()[:-1] + bytes([model.read_bytes()[-1] ^ 1]))
    status, body, _ = call(
        api, "POST", "/v1/artifacts", data=tar_of(tampered, tmp_path), content_type="application/x-tar"
    )
    assert status == 400 and body["error"] == "verification_failed", body
    assert "sha256" in body["message"] and ".upload-" not in body["message"] and "/tmp" not in body["message"]
    status, body, _ = call(api, "POST", "/v1/artifacts", data=b"not a tar" * 100, content_type="application/x-tar")
    assert status == 400 and body["error"] == "verification_failed"
    status, body, _ = call(api, "POST", "/v1/artifacts", {"path": str(releases["1.2.3"])})
    assert status == 415 and "application/x-tar" in body["fix"]
    assert call(api, "GET", "/v1/artifacts")[1]["artifacts"] == []


# --- devices and rollouts ----------------------------------------------------------------------------


def test_devices_filtered_by_tag_and_target(api, fleet):
    register(fleet, 3, tags={"site": "berlin"})
    register(fleet, 2, target="cpu-openvino", prefix="gw")
    assert len(call(api, "GET", "/v1/devices")[1]["devices"]) == 5
    assert len(call(api, "GET", "/v1/devices?tag=site=berlin")[1]["devices"]) == 3
    assert [d["id"] for d in call(api, "GET", "/v1/devices?target=cpu-openvino&id=gw-0*")[1]["devices"]] == [
        "gw-00",
        "gw-01",
    ]
    status, body, _ = call(api, "GET", "/v1/devices?tag=site")
    assert status == 400 and "cannot read" in body["message"]
    assert call(api, "GET", "/v1/devices?colour=red")[0] == 400
    status, body, _ = call(api, "GET", "/v1/devices/cam-01")
    assert status == 200 and body["tags"] == {"site": "berlin"} and body["events"] == []
    assert call(api, "GET", "/v1/devices/nobody")[0] == 404


def test_tags_set_over_http_are_what_rollouts_select(api, fleet, releases, tmp_path):
    register(fleet, 4)
    register(fleet, 2, target="cpu-openvino", prefix="gw")
    status, device, _ = call(api, "PUT", "/v1/devices/cam-03/tags", {"set": {"site": "berlin", "rack": "7"}})
    assert status == 200 and device["id"] == "cam-03" and device["tags"] == {"rack": "7", "site": "berlin"}
    status, body, _ = call(api, "POST", "/v1/tags", {"to": "id=cam-0*,tag:site=berlin", "remove": ["rack"]})
    assert status == 200 and (body["matched"], body["changed"]) == (1, 1)
    status, body, _ = call(api, "POST", "/v1/tags", {"to": "id=cam-0[0-1]", "set": {"site": "berlin"}})
    assert status == 400 and "cannot read" in body["message"]
    status, body, _ = call(api, "POST", "/v1/tags", {"to": "target=cpu-ort,id=cam-01", "set": {"site": "berlin"}})
    assert status == 200 and [d["tags"] for d in body["devices"]] == [{"site": "berlin"}]
    status, body, _ = call(api, "POST", "/v1/tags", {"to": "all", "set": {"site": "berlin"}})  # gw-* too, then …
    assert (body["matched"], body["changed"]) == (6, 4)
    status, body, _ = call(api, "POST", "/v1/tags", {"to": "target=cpu-openvino", "remove": ["site"]})  # … not
    assert (body["matched"], body["changed"]) == (2, 2)
    berlin = ["cam-00", "cam-01", "cam-02", "cam-03"]
    assert [d["id"] for d in call(api, "GET", "/v1/devices?tag=site=berlin")[1]["devices"]] == berlin
    publish(api, releases["1.2.3"], tmp_path)
    status, created, _ = call(api, "POST", "/v1/rollouts", {"artifact": "digits@1.2.3", "to": "tag:site=berlin"})
    assert status == 201 and sorted(e["device_id"] for e in created["executions"]) == berlin
    assert created["skipped_incompatible"] == 0 and created["artifact"] == "digits@1.2.3"


def test_tag_requests_refused_with_what_to_do(api, fleet):
    register(fleet, 2)
    refusals = [
        ("PUT", "/v1/devices/nobody/tags", {"set": {"site": "berlin"}}, 404, "no device nobody"),
        ("PUT", "/v1/devices/cam-00/tags", {}, 400, "no tag to set or remove"),
        ("PUT", "/v1/devices/cam-00/tags", {"set": {"floor": 3}}, 400, "not an object of strings"),
        ("PUT", "/v1/devices/cam-00/tags", {"set": {"si:te": "x"}}, 400, "has ':'"),
        ("PUT", "/v1/devices/cam-00/tags", {"set": {"site": "a b"}}, 400, "has ' '"),
        ("PUT", "/v1/devices/cam-00/tags", {"remove": "site"}, 400, "not a list of strings"),
        ("PUT", "/v1/devices/cam-00/tags", {"set": {"a": "1"}, "remove": ["a"]}, 400, "both set and removed"),
        ("PUT", "/v1/devices/cam-00/tags", {"tags": {"a": "1"}}, 400, "unknown field(s) ['tags']"),
        ("POST", "/v1/tags", {"set": {"site": "berlin"}}, 400, "missing field(s) ['to']"),
        ("POST", "/v1/tags", {"to": "tag:site=mars", "set": {"x": "y"}}, 400, "matches 0 device(s)"),
    ]
    for method, path, body, expected, message in refusals:
        status, answer, _ = call(api, method, path, body)
        assert (status, message in answer["message"]) == (expected, True), answer
        assert answer["fix"]
    status, answer, _ = call(api, "PUT", "/v1/devices/cam-00/tags", {"set": {"a": "1"}}, token=READER)
    assert status == 403
    assert all(d["tags"] == {} for d in call(api, "GET", "/v1/devices")[1]["devices"])


def test_every_refusal_says_what_to_do_next(api, fleet, releases, tmp_path):
    register(fleet, 10)
    publish(api, releases["1.2.3"], tmp_path)
    rid = call(api, "POST", "/v1/rollouts", {"artifact": "digits@1.2.3", "to": "id=cam-00"})[1]["id"]
    call(api, "POST", f"/v1/rollouts/{rid}/pause")
    arms = {"a": "digits@1.2.3", "b": "digits@1.2.3"}
    expected_fixes = [
        ("POST", f"/v1/rollouts/{rid}/pause", None, 409, f"resume it with `edgeml fleet rollout resume {rid}`"),
        ("POST", f"/v1/rollouts/{rid}/abort", None, 200, None),
        ("POST", f"/v1/rollouts/{rid}/abort", None, 409, f"edgeml fleet rollout status {rid}"),
        ("POST", f"/v1/rollouts/{rid}/resume", None, 409, "start a new one with `edgeml fleet rollout create`"),
        ("POST", "/v1/rollouts", {"artifact": "digits@1.2.3", "to": "all", "bake": "soon"}, 400, "e.g. 10m"),
        ("POST", "/v1/rollouts", {"artifact": "digits@1.2.3", "to": "all", "waves": "50%,20%"}, 400, "larger share"),
        ("POST", "/v1/rollouts", {"artifact": "digits@9", "to": "all"}, 400, "edgeml fleet artifacts"),
        ("POST", "/v1/experiments", arms | {"to": "id=cam-0*", "split": 100}, 400, "e.g. 50"),
        ("POST", "/v1/experiments", arms | {"to": "id=cam-00"}, 400, "widen the selector"),
        ("DELETE", f"/v1/rollouts/{rid}", None, 405, "call it with GET"),
        ("POST", "/v1/rollouts", [1], 400, "send a JSON object"),
    ]
    for method, path, body, status, fix in expected_fixes:
        got, answer, _ = call(api, method, path, body)
        assert got == status, (method, path, answer)
        if fix is not None:
            assert isinstance(answer["fix"], str) and fix in answer["fix"], answer
    eid = call(api, "POST", "/v1/experiments", arms | {"to": "all"})[1]["id"]
    call(api, "POST", f"/v1/experiments/{eid}/stop", {})
    status, answer, _ = call(api, "POST", f"/v1/experiments/{eid}/stop", {})
    assert status == 409 and f"edgeml fleet experiment report {eid}" in answer["fix"]


def test_a_rollout_created_watched_paused_resumed_and_aborted(api, fleet, releases, tmp_path):
    register(fleet, 5)
    artifact = publish(api, releases["1.2.3"], tmp_path)
    request = {"artifact": "digits@1.2.3", "to": "target=cpu-ort", "canary": 20, "waves": ["60%", "100%"],
               "bake": "1s", "gates": ["install_success>=0.9", "p95_latency<=1.2*baseline"]}  # fmt: skip
    status, created, headers = call(api, "POST", "/v1/rollouts", request)
    assert status == 201 and created["artifact_sha"] == artifact["sha256"] and headers["X-Request-Id"]
    assert [w["size"] for w in created["waves"]] == [1, 2, 2] and created["plan"]["waves"] == [0.2, 0.6, 1.0]
    rid = created["id"]
    assert call(api, "GET", f"/v1/rollouts/{rid}")[1]["gates_now"] == {}
    fleet.rollouts.tick(time.time())  # what the serving fleet does next: expose the canary
    status, watched, _ = call(api, "GET", f"/v1/rollouts/{rid}")
    assert watched["wave"] == 0 and watched["gates_now"]["p95_latency"] == [None, None]
    assert call(api, "POST", f"/v1/rollouts/{rid}/pause")[1]["state"] == "paused"
    status, body, _ = call(api, "POST", f"/v1/rollouts/{rid}/pause")
    assert status == 409 and body["message"] == f"rollout {rid} is paused, not running"
    assert call(api, "POST", f"/v1/rollouts/{rid}/resume", {})[1]["state"] == "running"
    status, aborted, _ = call(api, "POST", f"/v1/rollouts/{rid}/abort", {"reason": "CI job 42 failed"})
    assert status == 200 and aborted["state"] == "aborted" and aborted["reason"] == "CI job 42 failed"
    assert call(api, "POST", f"/v1/rollouts/{rid}/abort")[0] == 409
    assert [r["id"] for r in call(api, "GET", "/v1/rollouts?state=aborted")[1]["rollouts"]] == [rid]
    assert call(api, "GET", "/v1/rollouts?state=running")[1]["rollouts"] == []
    status, body, _ = call(api, "GET", "/v1/rollouts?state=runing")  # a typo is refused, not an empty list
    assert status == 400 and "unknown rollout state 'runing'" in body["message"] and "running" in body["fix"]
    events = call(api, "GET", f"/v1/rollouts/{rid}")[1]["events"]
    assert [(e["kind"], e["actor"]) for e in events] == [
        ("created", "http:operator"), ("next_wave", "fleet"), ("pause", "http:operator"),
        ("resume", "http:operator"), ("abort", "http:operator"),
    ]  # fmt: skip
    assert call(api, "GET", "/v1/stats")[1]["rollouts"] == {"aborted": 1}


def test_rollout_requests_refused_with_the_fleets_own_messages(api, fleet, releases, tmp_path):
    register(fleet, 3)
    publish(api, releases["1.2.3"], tmp_path)
    status, body, _ = call(api, "POST", "/v1/rollouts", {"artifact": "digits@1.2.3", "to": "tag:site=mars"})
    assert status == 400 and "matches 0 device(s)" in body["message"] and body["fix"]
    bad_gate = {"artifact": "digits@1.2.3", "to": "all", "gates": ["p95_latency<=1.2*basline"]}
    status, body, _ = call(api, "POST", "/v1/rollouts", bad_gate)
    assert status == 400 and "at position" in body["message"] and "METRIC OP NUMBER" in body["fix"]
    status, body, _ = call(api, "POST", "/v1/rollouts", {"artifact": "digits@1.2.3", "to": "all", "gate": "x"})
    assert status == 400 and "unknown field(s) ['gate']" in body["message"] and "gates" in body["fix"]
    status, body, _ = call(api, "POST", "/v1/rollouts", {"artifact": "digits@1.2.3", "to": "all", "canary": True})
    assert status == 400 and "canary" in body["message"]
    assert "missing field(s) ['to']" in call(api, "POST", "/v1/rollouts", {"artifact": "digits@1.2.3"})[1]["message"]
    for path in ("/v1/rollouts/r-nothing", "/v1/experiments/e-nothing/report"):
        status, body, _ = call(api, "GET", path)
        assert status == 404 and body["error"] == "not_found"
    assert call(api, "POST", "/v1/rollouts/r-nothing/resume")[0] == 404
    assert call(api, "GET", "/v1/rollouts")[1]["rollouts"] == []


def test_an_experiment_created_and_reported(api, fleet, releases, tmp_path):
    register(fleet, 10)
    a, b = (publish(api, releases[v], tmp_path) for v in ("1.2.3", "1.3.0"))
    request = {"a": "digits@1.2.3", "b": b["sha256"], "to": "all", "split": 30, "metrics": ["p95_latency"]}
    status, created, _ = call(api, "POST", "/v1/experiments", request)
    assert status == 201 and created["a_sha"] == a["sha256"] and created["split"] == 30
    assert created["arms"]["A"]["devices"] + created["arms"]["B"]["devices"] == 10
    status, report, _ = call(api, "GET", f"/v1/experiments/{created['id']}/report", token=READER)
    assert status == 200 and report["metrics"]["p95_latency"]["verdict"].startswith("insufficient data")
    status, body, _ = call(api, "POST", "/v1/experiments", request | {"split": "half"})
    assert status == 400 and "split" in body["message"]
    status, body, _ = call(api, "POST", "/v1/rollouts", {"artifact": "digits@1.3.0", "to": "all"})
    assert status == 409 and f"10 in experiment {created['id']}" in body["message"]  # one plan per device
    status, body, _ = call(api, "GET", "/v1/experiments", token=READER)
    assert status == 200 and [(e["id"], e["ended_at"]) for e in body["experiments"]] == [(created["id"], None)]
    path = f"/v1/experiments/{created['id']}/stop"
    assert call(api, "POST", path, {"keep": "C"})[0] == 400
    assert call(api, "POST", path, {}, token=READER)[0] == 403
    status, ended, _ = call(api, "POST", path, {"keep": "B"})
    assert status == 200 and ended["state"] == "ended" and ended["outcome"] == "kept B"
    assert call(api, "POST", path, {})[0] == 409  # already ended
    assert call(api, "POST", "/v1/experiments/e-nothing/stop", {})[0] == 404
    assert call(api, "POST", "/v1/rollouts", {"artifact": "digits@1.3.0", "to": "all"})[0] == 201
    assert call(api, "GET", "/v1/retrain")[1] == {"requests": []}


def test_concurrent_readers_and_writers_share_the_database_safely(api, fleet, releases, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    register(fleet, 4)
    publish(api, releases["1.2.3"], tmp_path)
    rid = call(api, "POST", "/v1/rollouts", {"artifact": "digits@1.2.3", "to": "all"})[1]["id"]

    def steer(i: int) -> int:
        return call(api, "POST", f"/v1/rollouts/{rid}/{'pause' if i % 2 == 0 else 'resume'}")[0]

    def read(i: int) -> int:
        return call(api, "GET", ("/v1/stats", f"/v1/rollouts/{rid}", "/v1/devices")[i % 3], token=READER)[0]

    with ThreadPoolExecutor(8) as pool:
        writes = pool.map(steer, range(20))
        reads = pool.map(read, range(60))
        assert set(reads) == {200} and set(writes) <= {200, 409}
    assert call(api, "GET", f"/v1/rollouts/{rid}")[1]["state"] in ("running", "paused")


# --- what never takes the server down ----------------------------------------------------------------


def test_malformed_oversized_and_odd_requests_are_answered_and_the_server_goes_on(api):
    status, body, _ = call(api, "POST", "/v1/rollouts", data=b'{"artifact": ', content_type="application/json")
    assert status == 400 and body["error"] == "malformed_json"
    assert call(api, "POST", "/v1/rollouts", ["not", "an", "object"])[1]["error"] == "malformed_json"
    status, body, _ = call(api, "POST", "/v1/rollouts", {"artifact": "x" * (2 << 20), "to": "all"})
    assert status == 413 and body["error"] == "payload_too_large"
    status, body, _ = call(api, "POST", "/v1/rollouts", data=b"artifact=x", content_type="text/plain")
    assert status == 415
    status, body, headers = call(api, "DELETE", "/v1/rollouts")
    assert status == 405 and headers["Allow"] == "GET, POST"
    for method in ("TRACE", "OPTIONS"):  # methods HTTP defines that no route takes: 405, not 501
        status, body, headers = call(api, method, "/v1/rollouts", token=None, check=False)
        assert status == 405 and body["error"] == "method_not_allowed" and "GET" in headers["Allow"], (method, body)
    status, body, _ = call(api, "POST", "/v1/artifacts", data=os.urandom(5 << 20), content_type="application/x-tar")
    assert status == 413 and body["error"] == "payload_too_large"
    with socket.create_connection(api.url.removeprefix("http://").split(":"), timeout=10) as raw:
        raw.sendall(b"GARBAGE\r\n\r\n")
        answer = raw.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.0 400") and b'"error": "bad_request"' in answer
    assert call(api, "GET", "/v1/health", token=None)[0] == 200


def test_a_crash_is_a_500_with_a_request_id_and_no_traceback(api, fleet, monkeypatch, caplog):
    def broken():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(fleet.retraining, "list", broken)
    status, body, headers = call(api, "GET", "/v1/retrain", check=False)
    assert status == 500 and body["error"] == "internal" and headers["X-Request-Id"] in body["message"]
    assert "secret" not in json.dumps(body) and "Traceback" not in json.dumps(body)
    assert "secret internals" in caplog.text

    def busy():
        raise FleetBusyError("the fleet database is locked by another writer", "retry")

    monkeypatch.setattr(fleet.rollouts, "list", busy)
    status, body, headers = call(api, "GET", "/v1/rollouts", check=False)
    assert status == 503 and body["error"] == "busy" and headers["Retry-After"] == "1"
    assert call(api, "GET", "/v1/health", token=None)[0] == 200


# --- the commands ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with urllib.request.urlopen(url + "/v1/health", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered /v1/health")


def get(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def fleet_cmd(*args, tmp_path, keypair, env=None) -> subprocess.Popen:
    common = ["--db", "fleet.sqlite", "--store", "artifacts", "--key", str(keypair[0])]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EDGEML_FLEET_HTTP")} | (env or {})
    return subprocess.Popen(["edgeml", "fleet", *args, *common], cwd=tmp_path, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.communicate(timeout=20)


@pytest.mark.broker
def test_fleet_serve_with_http_serves_the_api(tmp_path, keypair, broker):
    (tmp_path / "token").write_text(OPERATOR + "\n")
    (tmp_path / "token").chmod(0o600)
    port = free_port()
    proc = fleet_cmd("serve", "--broker", broker.url, "--http", f"127.0.0.1:{port}", "--http-token-file", "token",
                     tmp_path=tmp_path, keypair=keypair)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_healthy(url, proc)["ok"] is True
        assert get(url + "/v1/devices", OPERATOR) == {"devices": []}
    finally:
        stop(proc)
    assert proc.returncode == 0


def test_fleet_http_serves_the_api_alone_with_the_token_from_the_environment(tmp_path, keypair):
    port = free_port()
    proc = fleet_cmd("http", "--listen", f"127.0.0.1:{port}", tmp_path=tmp_path, keypair=keypair,
                     env={"EDGEML_FLEET_HTTP_TOKEN": OPERATOR})  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        assert get(url + "/v1/stats", OPERATOR)["artifacts"] == 0
    finally:
        stop(proc)
    assert proc.returncode == 0


def test_a_sigterm_while_the_service_is_still_starting_stops_it_once_started():
    """`fleet serve` answers /v1/health before its MQTT side is up, so a SIGTERM can come while it starts: the
    handler is installed before anything starts, the request is kept, and the service stops cleanly (exit 0)
    instead of dying of the signal (−15). In a process of its own: the signal must not reach pytest."""
    script = (
        "import os, signal\n"
        "from edgeml.cli.fleet_http_cmd import StopRequest\n"
        "stop = StopRequest()  # what serve does first\n"
        "os.kill(os.getpid(), signal.SIGTERM)  # then, while it starts, the signal arrives\n"
        "stop.wait()\n"
        "print('stopped cleanly')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "stopped cleanly"), done.stderr


def test_the_http_api_never_starts_without_a_token(tmp_path, keypair):
    proc = fleet_cmd("serve", "--http", "127.0.0.1:0", tmp_path=tmp_path, keypair=keypair)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "needs an operator token" in err and "secrets.token_urlsafe" in err
    (tmp_path / "short").write_text("abc")
    proc = fleet_cmd("http", "--token-file", "short", tmp_path=tmp_path, keypair=keypair)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "at least 16" in err

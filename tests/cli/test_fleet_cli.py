"""`edgeml fleet` as an operator uses it: serve (with the embedded broker), publish, simulated devices,
a rollout driven and watched from the CLI, device listing and ACL generation."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

pytestmark = pytest.mark.broker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def edgeml(*args, cwd, check=True):
    return subprocess.run(["edgeml", *args], cwd=cwd, capture_output=True, text=True, check=check, env=os.environ)


def test_operator_tour_on_the_embedded_broker(tmp_path, keypair, releases):
    port = free_port()
    common = ["--db", "fleet.sqlite", "--store", "artifacts", "--key", str(keypair[0])]
    serve = subprocess.Popen(["edgeml", "fleet", "serve", *common, "--port", str(port)], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    sim = None
    try:
        assert "embedded MQTT broker" in serve.stdout.readline() + serve.stdout.readline()
        published = json.loads(
            edgeml("fleet", "publish", *common, str(releases["1.2.3"]), "--json", cwd=tmp_path).stdout
        )
        assert published["name"] == "digits" and published["version"] == "1.2.3"
        listed = json.loads(edgeml("fleet", "artifacts", *common, "--json", cwd=tmp_path).stdout)
        assert [a["sha256"] for a in listed] == [published["sha256"]]
        sim = subprocess.Popen(["edgeml", "fleet", "simulate", "--devices", "6", "--broker", f"mqtt://127.0.0.1:{port}",
                                "--pubkey", str(keypair[1]), "--duration", "60s", "--json"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            devices = json.loads(edgeml("fleet", "devices", *common, "--json", cwd=tmp_path).stdout)
            if len(devices) == 6:
                break
            time.sleep(0.5)
        assert len(devices) == 6
        created = json.loads(edgeml("fleet", "rollout", "create", *common, "digits@1.2.3", "--to", "target=cpu-ort",
                                    "--canary", "20%", "--waves", "100%", "--bake", "1s", "--gate",
                                    "install_success>=1.0", "--json", cwd=tmp_path).stdout)  # fmt: skip
        status = {}
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            status = json.loads(
                edgeml("fleet", "rollout", "status", *common, created["id"], "--json", cwd=tmp_path).stdout
            )
            if status["state"] == "completed":
                break
            time.sleep(0.5)
        assert status["state"] == "completed", status
        table = edgeml("fleet", "rollout", "status", *common, created["id"], cwd=tmp_path).stdout
        assert "every wave passed its gates" in table and "succeeded 4" in table
        devices = json.loads(edgeml("fleet", "devices", *common, "--json", cwd=tmp_path).stdout)
        assert {d["current_version"] for d in devices} == {"1.2.3"}
        edgeml("fleet", "acl", *common, "--out", "mosquitto.acl", cwd=tmp_path)
        acl = (tmp_path / "mosquitto.acl").read_text()
        assert "user sim-00000" in acl and "topic read edgeml/v1/devices/sim-00000/desired" in acl
        bad = edgeml("fleet", "rollout", "create", *common, "digits@1.2.3", "--to", "tag:site=mars", cwd=tmp_path,
                     check=False)  # fmt: skip
        assert bad.returncode == 2 and "matches 0 device(s)" in bad.stderr
    finally:
        if sim is not None:
            sim.send_signal(signal.SIGINT)
            sim.wait(timeout=20)
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=20)


def test_acl_writes_the_password_file_and_a_config_that_binds_client_ids(tmp_path, keypair):
    common = ["--db", "fleet.sqlite", "--store", "artifacts", "--key", str(keypair[0])]
    args = ["fleet", "acl", *common, "--out", "mosquitto.acl", "--device", "cam-1", "--device", "cam-2", "--passwords",
            "mosquitto.passwd", "--credentials", "credentials.txt", "--conf", "mosquitto.conf"]  # fmt: skip
    first = edgeml(*args, cwd=tmp_path)
    assert "3 hashed password(s)" in first.stdout and "3 new password(s)" in first.stdout
    credentials = (tmp_path / "credentials.txt").read_text()
    hashed = (tmp_path / "mosquitto.passwd").read_text()
    assert [line.split(":")[0] for line in hashed.splitlines()] == ["cam-1", "cam-2", "edgeml-fleet"]
    assert all(line.split(":", 1)[1].startswith("$7$") for line in hashed.splitlines())
    for name in ("credentials.txt", "mosquitto.passwd"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    conf = (tmp_path / "mosquitto.conf").read_text()
    assert "use_username_as_clientid true" in conf and f"acl_file {tmp_path / 'mosquitto.acl'}" in conf
    again = edgeml(*args, "--device", "cam-3", cwd=tmp_path)
    assert "1 new password(s)" in again.stdout
    assert (tmp_path / "credentials.txt").read_text().startswith(credentials.splitlines()[0])
    missing = edgeml("fleet", "acl", *common, "--out", "a.acl", "--passwords", "p", cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "--credentials" in missing.stderr


def test_serve_never_prints_the_broker_password(tmp_path, keypair, broker):
    url = broker.url.replace("mqtt://", "mqtt://edgeml-fleet:fleetpw@")
    serve = subprocess.Popen(["edgeml", "fleet", "serve", "--db", "fleet.sqlite", "--store", "artifacts", "--key",
                              str(keypair[0]), "--broker", url], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        line = serve.stdout.readline()
        assert "fleet serving on mqtt://edgeml-fleet:***@127.0.0.1" in line
    finally:
        serve.send_signal(signal.SIGINT)
        rest = serve.communicate(timeout=20)[0]
    assert "fleetpw" not in line + rest

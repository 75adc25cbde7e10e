"""The compose services' commands, run as written outside a container on the local PostgreSQL and a Mosquitto of
the test's own: container paths become folders of the test, service hosts become 127.0.0.1, nothing else
changes. broker-config writes the broker's files, Mosquitto runs on them, two fleet instances join one group
with the passwords from .env, and a device added the way docs/deploy.md says registers through the agent
image's entrypoint and environment."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.postgres]

# The console scripts the images start (test_deploy_files.py pins them to pyproject): this checkout's, or with
# EDGEML_TEST_DEPLOY_BIN (folders, os.pathsep-separated) the scripts of installs made as the Dockerfiles make them
INSTALLED = os.environ.get("EDGEML_TEST_DEPLOY_BIN")
ENTRYPOINTS = {
    "edgeml": [sys.executable, "-c", "from edgeml.cli import main; main()"],
    "edgeml-agent": [sys.executable, "-c", "from edgeml.device_agent.cli import main; main()"],
}
if INSTALLED:
    ENTRYPOINTS = {name: [shutil.which(name, path=INSTALLED) or name] for name in ENTRYPOINTS}
JOINED = "one of the --share-group edgeml instances"  # what `fleet serve --share-group edgeml` prints
SETTINGS = {"POSTGRES_PASSWORD": "pg", "FLEET_MQTT_PASSWORD": "mqtt-pw-1",
            "EDGEML_FLEET_HTTP_TOKEN": "operator-token-0123456789"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Host:
    """Where the compose file's container paths and service addresses are on this machine."""

    def __init__(self, tmp: Path, postgres_url: str, mqtt_port: int) -> None:
        self.paths = {
            "/run/secrets/edgeml": tmp / "secrets",
            "/var/lib/edgeml/broker": tmp / "broker",
            "/var/lib/edgeml/artifacts": tmp / "artifacts",
            "/var/lib/edgeml": tmp / "agent-state",
        }
        for p in self.paths.values():
            p.mkdir(exist_ok=True)
        self.postgres_url, self.mqtt_port = postgres_url, mqtt_port

    def word(self, word: str) -> str:
        if word.startswith("postgresql://") and "@postgres:5432/" in word:
            return self.postgres_url
        word = word.replace("@mosquitto:1883", f"@127.0.0.1:{self.mqtt_port}")
        word = word.replace("0.0.0.0:1883", f"127.0.0.1:{self.mqtt_port}")
        for inside, outside in sorted(self.paths.items(), key=lambda kv: -len(kv[0])):
            if word == inside or word.startswith(inside + "/"):
                return str(outside) + word[len(inside) :]
        return word

    def env(self, service: dict, image_env: dict[str, str]) -> dict[str, str]:
        inside = image_env | {k: str(v) for k, v in (service.get("environment") or {}).items()}
        base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # NOTE: installed: its own edgeml only
        checkout = {} if INSTALLED else {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        return base | checkout | {k: self.word(v) for k, v in inside.items()}


def start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT)


def wait_until(condition, what: str, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + 90
    while not condition():
        tail = log.read_text(errors="replace")[-3000:] if log else ""
        assert proc is None or proc.poll() is None, f"{what}: exited {proc.returncode}\n{tail}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{tail}"
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # NOTE: what `docker stop` and a pod's termination send
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run_broker_config(host: Host, service: dict, image_env: dict, extra: list[str]) -> None:
    argv = [*ENTRYPOINTS["edgeml"], *(host.word(w) for w in service["command"]), *extra]
    done = subprocess.run(argv, env=host.env(service, image_env), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_services_run_as_written(tmp_path, postgres_url, keypair, deploy_files):
    services = deploy_files.compose(SETTINGS)["services"]
    image_argv, image_env, _ = deploy_files.dockerfile("fleet")
    assert image_argv[0] == "edgeml"
    host = Host(tmp_path, postgres_url, free_port())
    secrets = host.paths["/run/secrets/edgeml"]
    # the setup docs/deploy.md gives: the signing key, the fleet users' password on their credentials lines
    (secrets / "signing.key").write_bytes(Path(keypair[0]).read_bytes())
    (secrets / "signing.pub").write_bytes(Path(keypair[1]).read_bytes())
    pw = SETTINGS["FLEET_MQTT_PASSWORD"]
    (secrets / "credentials.txt").write_text(f"edgeml-fleet-1:{pw}\nedgeml-fleet-2:{pw}\n")
    (secrets / "credentials.txt").chmod(0o600)

    run_broker_config(host, services["broker-config"], image_env, [])
    mosquitto = services["mosquitto"]["command"]
    conf = Path(host.word(mosquitto[mosquitto.index("-c") + 1]))
    assert "allow_anonymous false" in conf.read_text()
    # NOTE: the compose file runs Mosquitto as the files' owner; the tests run as root, which Mosquitto would
    # leave for its own user unless told to stay
    conf.write_text(conf.read_text() + "persistence false\nuser root\n")
    procs = {"mosquitto": start([mosquitto[0], *(host.word(w) for w in mosquitto[1:])], os.environ,
                                tmp_path / "mosquitto.log")}  # fmt: skip
    try:
        wait_until(lambda: _listening(host.mqtt_port), "Mosquitto", procs["mosquitto"], tmp_path / "mosquitto.log")
        http = {}
        for name in ("fleet-1", "fleet-2"):
            service, http[name] = services[name], free_port()
            argv = [host.word(w).replace("0.0.0.0:8080", f"127.0.0.1:{http[name]}") for w in service["command"]]
            procs[name] = start([*ENTRYPOINTS["edgeml"], *argv], host.env(service, image_env), tmp_path / name)
        for name in ("fleet-1", "fleet-2"):
            log = tmp_path / name
            wait_until(lambda log=log: JOINED in log.read_text(), name, procs[name], log)
            wait_until(lambda name=name: _get(http[name], "/v1/health") == 200, f"{name}'s HTTP API", procs[name], log)
            assert _get(http[name], "/v1/devices", SETTINGS["EDGEML_FLEET_HTTP_TOKEN"]) == 200

        # a device joins: broker-config again with --device, SIGHUP, and the agent image's entrypoint
        run_broker_config(host, services["broker-config"], image_env, ["--device", "dock-001"])
        procs["mosquitto"].send_signal(signal.SIGHUP)
        device_pw = next(line.split(":", 1)[1] for line in (secrets / "credentials.txt").read_text().splitlines()
                         if line.startswith("dock-001:"))  # fmt: skip
        agent_argv, agent_env, _ = deploy_files.dockerfile("agent")
        agent_env = agent_env | {
            "EDGEML_AGENT_DEVICE_ID": "dock-001", "EDGEML_AGENT_TARGET": "cpu-ort",
            "EDGEML_AGENT_FLEET_PUBLIC_KEY": str(secrets / "signing.pub"),
            "EDGEML_AGENT_BROKER_URL": f"mqtt://dock-001:{device_pw}@mosquitto:1883",
        }  # fmt: skip
        procs["agent"] = start([*ENTRYPOINTS[agent_argv[0]], *agent_argv[1:]], host.env({"environment": agent_env},
                               {}), tmp_path / "agent.log")  # fmt: skip
        token = SETTINGS["EDGEML_FLEET_HTTP_TOKEN"]
        registered = lambda: _get(http["fleet-2"], "/v1/devices/dock-001", token) == 200  # noqa: E731
        wait_until(registered, "dock-001 registered", procs["agent"], tmp_path / "agent.log")
        assert any(host.paths["/var/lib/edgeml"].iterdir()), "the agent keeps its state in the image's STATE_DIR"
    finally:
        codes = {name: stop(p) for name, p in reversed(procs.items())}
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in tmp_path.iterdir() if p.is_file()}
    assert codes["fleet-1"] == 0 and codes["fleet-2"] == 0 and codes["agent"] == 0, (codes, logs)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _get(port: int, path: str, token: str | None = None) -> int | None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None

"""`edgeml-agent init | run | status`, and the agent's footprint: it loads no compiler code, and no numpy
until it has a model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from edgeml.device_agent import load_config
from edgeml.device_agent.cli import main
from edgeml.protocol import Kind


@pytest.fixture
def config_file(tmp_path, keypair):
    def write(url="mqtt://127.0.0.1:1", **extra):
        args = ["init", "--device-id", "cam-042", "--target", "cpu-ort", "--broker", url, "--pubkey", str(keypair[1]),
                "--state-dir", str(tmp_path / "agent")]  # fmt: skip
        for key, value in extra.items():
            args += [f"--{key.replace('_', '-')}", value]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        path = tmp_path / "agent.toml"
        path.write_text(result.stdout)
        return path

    return write


def test_init_writes_a_config_that_loads(config_file, tmp_path, keypair):
    config = load_config(config_file(listen="unix:///run/edgeml/agent.sock"), env={})
    assert (config.agent.device_id, config.agent.state_dir) == ("cam-042", str(tmp_path / "agent"))
    assert config.agent.fleet_public_key == str(keypair[1]) and config.endpoint.listen.startswith("unix://")
    bad = CliRunner().invoke(main, ["init", "--device-id", "cam/1", "--target", "cpu-ort", "--broker", "mqtt://b",
                                    "--pubkey", "k.pub"])  # fmt: skip
    assert bad.exit_code == 2 and "device id 'cam/1'" in bad.output


def test_init_keeps_the_broker_password_private(tmp_path, keypair):
    url = "mqtt://cam-042:s3cret-pw@fleet.local:1883"
    args = ["init", "--device-id", "cam-042", "--target", "cpu-ort", "--broker", url, "--pubkey", str(keypair[1]),
            "--state-dir", str(tmp_path / "agent")]  # fmt: skip
    out = tmp_path / "agent.toml"
    written = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert written.exit_code == 0 and "mode 0600" in written.output and "s3cret-pw" not in written.output
    assert out.stat().st_mode & 0o777 == 0o600 and "s3cret-pw" in out.read_text()
    redirected = tmp_path / "redirected.toml"
    with open(redirected, "w") as f:  # `edgeml-agent init ... > agent.toml`
        subprocess.run([sys.executable, "-m", "edgeml.device_agent.cli", *args], stdout=f, check=True)
    assert redirected.stat().st_mode & 0o777 == 0o600 and "s3cret-pw" in redirected.read_text()
    status = CliRunner().invoke(main, ["status", "--config", str(out), "--json"])
    assert "s3cret-pw" not in status.output and "cam-042:***@fleet.local" in status.output


def test_status_reads_the_state_folder(config_file, preinstall, digits_artifact):
    path = config_file()
    preinstall(load_config(path, env={}), digits_artifact)
    result = CliRunner().invoke(main, ["status", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert (status["lifecycle"], status["active"], status["slots"]["a"]["version"]) == ("committed", "a", "1.2.3")
    assert status["spool"]["messages"] == 0 and status["process"]["running"] is False
    human = CliRunner().invoke(main, ["status", "--config", str(path)])
    assert human.exit_code == 0 and "lifecycle committed" in human.stdout and "spool: 0 message(s)" in human.stdout
    missing = CliRunner().invoke(main, ["status", "--config", str(path.with_name("nope.toml"))])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_the_agent_loads_no_compiler_code(config_file, preinstall, digits_artifact):
    path = config_file()
    preinstall(load_config(path, env={}), digits_artifact)
    code = textwrap.dedent(f"""
        import sys, numpy as np
        from edgeml.transport.memory_transport import MemoryBroker, MemoryTransport
        from edgeml.device_agent import Agent
        import edgeml.device_agent.cli
        agent = Agent.from_config({str(path)!r}, MemoryTransport(MemoryBroker(), "cam-042")).start()
        agent.predict({{"input": np.zeros((1, 1, 8, 8), np.float32)}})
        agent.send_telemetry()
        agent.stop()
        banned = ("edgeml.compiler", "edgeml.calibration", "edgeml.targets", "edgeml.cli", "edgeml.fleet",
                  "torch", "onnx", "openvino", "nncf", "tensorflow", "sklearn")
        print(sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in banned)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_an_agent_without_a_model_starts_without_numpy(config_file):
    """Until a model is committed nothing needs numpy (~13 MiB of RSS): the real MQTT transport, connecting."""
    code = textwrap.dedent(f"""
        import sys
        from edgeml.device_agent import Agent
        agent = Agent.from_config({str(config_file())!r}).start()
        agent.send_telemetry()
        loaded = sorted(m for m in ("numpy", "statistics", "paho") if m in sys.modules)
        agent.stop(timeout=2)
        print(loaded)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['paho']"


@pytest.mark.broker
def test_run_in_the_foreground_with_a_last_will_and_a_clean_stop(broker, config_file, mqtt_fleet):
    path = config_file(broker.url)
    fleet = mqtt_fleet()
    command = [sys.executable, "-m", "edgeml.device_agent.cli", "run", "--config", str(path)]
    killed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert fleet.next(Kind.STATUS, timeout=15, where=lambda s: s.online).state == "idle"
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    assert not fleet.next(Kind.STATUS, timeout=60, where=lambda s: not s.online).online  # the broker's last will
    stopped = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    fleet.next(Kind.STATUS, timeout=15, where=lambda s: s.online)
    stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(15) == 0, stopped.stderr.read()
    assert not fleet.next(Kind.STATUS, timeout=5).online  # said goodbye itself


def test_the_main_cli_can_mount_the_agent_commands():
    from edgeml.cli.agent_cli import agent

    assert set(agent.commands) == {"init", "run", "status"}

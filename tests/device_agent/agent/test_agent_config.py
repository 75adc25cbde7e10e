"""agent.toml and EDGEML_AGENT_* variables → AgentConfig: precedence, types, paths, and errors that name the
key and the fix; `init` writes a config that loads back unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeml.device_agent import AgentConfigError, load_config
from edgeml.device_agent.config.agent_config import env_name, iter_options
from edgeml.device_agent.config.config_template import render_config

MINIMAL = """
[agent]
device_id = "cam-042"
target = "cpu-ort"
state_dir = "state"
fleet_public_key = "keys/fleet.pub"

[broker]
url = "mqtt://fleet.local:1883"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_file_values_defaults_and_relative_paths(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL), env={})
    assert (config.agent.device_id, config.agent.target, config.broker.url) == ("cam-042", "cpu-ort",
                                                                                 "mqtt://fleet.local:1883")  # fmt: skip
    assert config.state_dir == tmp_path / "state"  # relative to the config file's folder
    assert config.agent.fleet_public_key == str(tmp_path / "keys" / "fleet.pub")
    assert config.telemetry.upload_samples is False and config.telemetry.period_s == 600.0
    assert config.download.window == 32 and config.endpoint.listen == ""


def test_environment_overrides_every_section(tmp_path):
    env = {
        "EDGEML_AGENT_DEVICE_ID": "cam-7",
        "EDGEML_AGENT_BROKER_URL": "mqtts://broker:8883",
        "EDGEML_AGENT_TELEMETRY_PERIOD_S": "30",
        "EDGEML_AGENT_TELEMETRY_UPLOAD_SAMPLES": "yes",
        "EDGEML_AGENT_RUNTIMES": "onnxruntime, openvino",
        "EDGEML_AGENT_ENDPOINT_LISTEN": "http://127.0.0.1:8765",
        "EDGEML_AGENT_CRASH_AT": "installing",  # the installer's test hook is not a config key
    }
    config = load_config(_write(tmp_path, MINIMAL), env=env)
    assert (config.agent.device_id, config.broker.url, config.telemetry.period_s) == ("cam-7", "mqtts://broker:8883",
                                                                                      30.0)  # fmt: skip
    assert config.telemetry.upload_samples is True and config.agent.runtimes == ("onnxruntime", "openvino")
    assert config.endpoint.listen == "http://127.0.0.1:8765"


def test_environment_alone_is_enough_for_containers(tmp_path):
    env = {env_name("agent", "device_id"): "cam-1", env_name("agent", "target"): "cpu-ort",
           env_name("agent", "fleet_public_key"): "/keys/fleet.pub", env_name("broker", "url"): "mqtt://b"}  # fmt: skip
    assert load_config(None, env=env).agent.device_id == "cam-1"
    assert [o.env for o in iter_options()][:2] == ["EDGEML_AGENT_DEVICE_ID", "EDGEML_AGENT_TARGET"]


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (MINIMAL + "\n[telemetry]\nperod_s = 5\n", {}, r"key 'perod_s' in \[telemetry\] \(did you mean 'period_s"),
        (MINIMAL + "\n[telemtry]\n", {}, r"unknown section \[telemtry\] \(did you mean 'telemetry'\?\)"),
        (MINIMAL + "\n[telemetry]\nperiod_s = \"often\"\n", {}, r"\[telemetry\] period_s = 'often' is not a number"),
        (MINIMAL + "\n[telemetry]\nperiod_s = 0\n", {}, r"period_s = 0.0: must be greater than 0"),
        (MINIMAL, {"EDGEML_AGENT_TELEMETRY_SPOOL_MAX_BYTES": "lots"}, r"SPOOL_MAX_BYTES = 'lots' is not an integer"),
        (MINIMAL, {"EDGEML_AGENT_TELEMETRY_UPLOAD_SAMPLES": "maybe"}, r"UPLOAD_SAMPLES = 'maybe' is not a boolean"),
        (MINIMAL, {"EDGEML_AGENT_DEVICE_ID": "cam/1"}, r"device id 'cam/1' is not 1–64 characters"),
        (MINIMAL, {"EDGEML_AGENT_BROKER_URL": "http://x"}, r"is not mqtt://HOST\[:PORT\]"),
        (MINIMAL, {"EDGEML_AGENT_ENDPOINT_LISTEN": "http://0.0.0.0:80"}, r"not a loopback address"),
        (MINIMAL.replace('target = "cpu-ort"\n', ""), {}, r"lacks \[agent\] target \(EDGEML_AGENT_TARGET\)"),
        ("[agent\n", {}, r"is not valid TOML"),
    ],
)  # fmt: skip
def test_bad_configs_name_the_key_and_the_fix(tmp_path, text, env, message):
    with pytest.raises(AgentConfigError, match=message):
        load_config(_write(tmp_path, text), env=env)


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(AgentConfigError, match="does not exist") as err:
        load_config(tmp_path / "nope.toml", env={})
    assert "edgeml-agent init" in err.value.hint


def test_the_template_documents_every_option_and_loads_back(tmp_path):
    values = {("agent", "device_id"): "cam-9", ("agent", "target"): "cpu-ort", ("agent", "state_dir"): "/var/x",
              ("agent", "fleet_public_key"): "/etc/fleet.pub", ("broker", "url"): "mqtt://fleet:1883"}  # fmt: skip
    text = render_config(values)
    for option in iter_options():
        assert option.env in text and option.help in text
    config = load_config(_write(tmp_path, text), env={})
    assert (config.agent.device_id, config.agent.state_dir, config.broker.url) == (
        "cam-9",
        "/var/x",
        "mqtt://fleet:1883",
    )
    assert config.telemetry == type(config.telemetry)()  # everything else at its default


def test_docs_list_every_option():
    docs = (Path(__file__).resolve().parents[3] / "docs" / "agent.md").read_text()
    missing = [f"{o.section}.{o.key}" for o in iter_options() if f"`{o.env}`" not in docs or f"`{o.key}`" not in docs]
    assert not missing, f"docs/agent.md lacks {missing}"

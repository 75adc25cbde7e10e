"""The deploy files agree with the code: every command line they run names real commands and options, every
EDGEML_* variable they set or the docs list is one the code reads, the images install extras that exist and
start the console scripts pyproject declares, and the Kubernetes broker config is what `edgeml fleet acl`
writes. None of this needs a container daemon; test_deploy_commands.py runs the same command lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgeml.cli import main as edgeml_cli
from edgeml.device_agent.cli import main as agent_cli

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ENV = {"POSTGRES_PASSWORD": "pg", "FLEET_MQTT_PASSWORD": "mqtt", "EDGEML_FLEET_HTTP_TOKEN": "token"}
CLIS = {"edgeml": edgeml_cli, "edgeml-agent": agent_cli}


def pyproject() -> dict:
    return tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())


def fleet_command_lines(deploy_files) -> dict[str, list[str]]:
    """Every command line the fleet image runs: compose services and Kubernetes containers, by name."""
    lines = {}
    for name, service in deploy_files.compose(ENV)["services"].items():
        if "fleet.Dockerfile" in str(service.get("build", {}).get("dockerfile", "")):
            lines[f"compose:{name}"] = service["command"]
    for doc in deploy_files.kubernetes_documents():
        for c in deploy_files.containers(doc):
            if c["image"] == "edgeml-fleet":
                lines[f"kubernetes:{doc['metadata']['name']}"] = c["args"]
    return lines


def test_every_command_line_names_real_commands_and_options(deploy_files):
    lines = fleet_command_lines(deploy_files)
    assert {"compose:broker-config", "compose:fleet-1", "compose:fleet-2", "kubernetes:edgeml-fleet"} <= set(lines)
    for where, words in lines.items():
        command, rest = deploy_files.click_command(edgeml_cli, words)
        assert command is not edgeml_cli and not isinstance(command, type(edgeml_cli)), f"{where}: {words}"
        assert deploy_files.unknown_options(command, rest) == [], f"{where}: options `{command.name}` lacks"
    for name in ("fleet", "agent"):
        argv, _, _ = deploy_files.dockerfile(name)
        command, rest = deploy_files.click_command(CLIS[argv[0]], argv[1:])
        assert deploy_files.unknown_options(command, rest) == [], f"{name}.Dockerfile CMD"


def test_images_start_the_console_scripts_and_install_real_extras(deploy_files):
    project = pyproject()["project"]
    scripts, extras = project["scripts"], project["optional-dependencies"]
    for name, needs in (("fleet", {"fleet", "postgres"}), ("agent", {"agent"})):
        argv, _, pip = deploy_files.dockerfile(name)
        assert argv[0] in scripts, f"{name}.Dockerfile ENTRYPOINT {argv[0]} is not a console script"
        installed = set(pip.split("[", 1)[1].split("]", 1)[0].split(","))
        assert installed <= set(extras) and needs <= installed, f"{name}.Dockerfile installs {installed}"


def test_every_edgeml_variable_the_deploy_files_and_docs_use_is_read_by_the_code(deploy_files):
    read = deploy_files.environment_read_by_code()
    used = {k for s in deploy_files.compose(ENV)["services"].values() for k in (s.get("environment") or {})}
    used |= {e["name"] for d in deploy_files.kubernetes_documents() for c in deploy_files.containers(d)
             for e in c.get("env", [])}  # fmt: skip
    used |= set(deploy_files.dockerfile("fleet")[1]) | set(deploy_files.dockerfile("agent")[1])
    used |= set(deploy_files.example_env())
    documented = deploy_files.documented_environment(deploy_files.ROOT / "docs" / "deploy.md")
    edgeml_names = {n for n in used | documented if n.startswith("EDGEML_")}
    assert edgeml_names - read == set(), "set or documented, but no code reads them"
    fleet_read = {n for n in read if n.startswith("EDGEML_FLEET_")}
    assert fleet_read - documented == set(), "the fleet reads these, docs/deploy.md does not list them"


def test_compose_variables_are_the_example_env_and_required_ones_fail_loudly(deploy_files):
    settings = {k for k in deploy_files.example_env() if not k.startswith("COMPOSE_")}  # compose's own
    assert deploy_files.compose_variables() == settings | {"FLEET_IMAGE"}
    config = deploy_files.compose(deploy_files.example_env())
    assert config["services"]["fleet-1"]["image"] == "edgeml-fleet:0.1.0"
    with pytest.raises(KeyError, match="FLEET_MQTT_PASSWORD"):
        deploy_files.compose({k: v for k, v in ENV.items() if k != "FLEET_MQTT_PASSWORD"})


def test_compose_fleet_users_are_the_instances_brokers_users(deploy_files):
    services = deploy_files.compose(ENV)["services"]
    words = services["broker-config"]["command"]
    users = {words[i + 1] for i, w in enumerate(words) if w == "--fleet-user"}
    instances = {n for n, s in services.items() if s.get("command", [])[:2] == ["fleet", "serve"]}
    brokers = {services[n]["command"][services[n]["command"].index("--broker") + 1] for n in instances}
    assert len(instances) == 2 and {b.split("//")[1].split(":")[0] for b in brokers} == users


def test_kubernetes_broker_config_is_what_fleet_acl_writes(deploy_files):
    from edgeml.fleet.mosquitto_config import mosquitto_conf

    docs = {(d["kind"], d["metadata"]["name"]): d for d in deploy_files.kubernetes_documents()}
    written = mosquitto_conf("/mosquitto/config/mosquitto.acl", "/mosquitto/config/mosquitto.passwd", "0.0.0.0:1883")
    assert docs["ConfigMap", "edgeml-mosquitto"]["data"]["mosquitto.conf"] == written
    fleet = docs["StatefulSet", "edgeml-fleet"]["spec"]
    args = fleet["template"]["spec"]["containers"][0]["args"]
    assert "$(POD_NAME)" in args[args.index("--broker") + 1], "each instance's MQTT user is its pod name"
    assert fleet["replicas"] == 2


def test_kustomize_builds_the_kubernetes_manifests(deploy_files):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the manifests were only parsed as YAML")
    out = subprocess.run([kubectl, "kustomize", str(deploy_files.DEPLOY / "kubernetes")], capture_output=True,
                         text=True, timeout=60, check=True).stdout  # fmt: skip
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(out) if d)
    assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service", "Service", "Service",
                     "StatefulSet"]  # fmt: skip
    assert "image: edgeml-fleet:0.1.0" in out


def test_docker_compose_accepts_the_file_and_interpolates_it_as_these_tests_do(deploy_files, tmp_path):
    """Offline: `docker compose config` (v2) or `docker-compose config` (v1) validates the file against the
    compose schema; its interpolation must give the commands and environments the other tests run."""
    if shutil.which("docker-compose"):
        tool = ["docker-compose"]
    elif subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        tool = ["docker", "compose"]
    else:
        pytest.skip("neither docker compose nor docker-compose is installed: the file was only parsed as YAML")
    env = tmp_path / "compose.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in ENV.items()))
    argv = [*tool, "--env-file", str(env), "-f", str(deploy_files.DEPLOY / "docker-compose.yaml"), "config"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    theirs, ours = yaml.safe_load(done.stdout)["services"], deploy_files.compose(ENV)["services"]
    assert set(theirs) == set(ours)
    for name in ("broker-config", "fleet-1", "fleet-2", "mosquitto"):
        assert [str(w) for w in theirs[name]["command"]] == [str(w) for w in ours[name]["command"]]
        assert theirs[name].get("environment") == ours[name].get("environment")

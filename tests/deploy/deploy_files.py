"""Reading the deploy/ files as their runtimes would: compose's `${VAR}` interpolation, Dockerfile ENV and
ENTRYPOINT, the click options a command line names, the environment variables the code reads."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SOURCES = [ROOT / "edgeml", ROOT / "fleet", ROOT / "device_agent"]  # NOTE: edgeml/fleet etc. are links to these

_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value, env: dict[str, str]):
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error} (an unset required one raises)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if env.get(name):
            return env[name]
        if op.endswith("?"):
            raise KeyError(f"{name}: {arg}")
        return arg

    return _VAR.sub(one, value)


def compose_variables() -> set[str]:
    """Every ${VAR} the compose file interpolates."""
    return set(_VAR_NAMES.findall((DEPLOY / "docker-compose.yaml").read_text()))


_VAR_NAMES = re.compile(r"\$\{(\w+)")


def compose(env: dict[str, str]) -> dict:
    """deploy/docker-compose.yaml as `docker compose config` would see it with `env` as deploy/.env."""
    return interpolate(yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text()), env)


def example_env() -> dict[str, str]:
    """deploy/example.env: the variables an operator sets."""
    pairs = (line.split("=", 1) for line in (DEPLOY / "example.env").read_text().splitlines())
    return {k.strip(): v.strip() for k, *rest in pairs for v in rest if not k.lstrip().startswith("#")}


def dockerfile(name: str) -> tuple[list[str], dict[str, str], str]:
    """(ENTRYPOINT + CMD, ENV, the pip install line) of deploy/NAME.Dockerfile's final stage."""
    text = (DEPLOY / f"{name}.Dockerfile").read_text().replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", final, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (.+)$", final, re.M).group(1))
    env = {}
    for line in re.findall(r"^ENV (.+)$", final, re.M):
        env.update(pair.split("=", 1) for pair in shlex.split(line))
    pip = re.search(r"pip install [^;]+", final).group(0)
    return entry + cmd, env, pip


def kubernetes_documents() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] != "Kustomization"]
    return docs


def containers(doc: dict) -> list[dict]:
    """The containers of a Kubernetes workload (none for other kinds)."""
    return doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def click_command(group: click.Group, words: list[str]) -> tuple[click.Command, list[str]]:
    """The (sub)command a command line names, and the rest of the line."""
    command, rest = group, list(words)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        command, rest = command.commands[rest[0]], rest[1:]
    return command, rest


def unknown_options(command: click.Command, rest: list[str]) -> list[str]:
    """The --options in `rest` that `command` does not have."""
    known = {"-h", "--help"} | {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    return [w for w in rest if w.startswith("-") and w.split("=", 1)[0] not in known]


def environment_read_by_code() -> set[str]:
    """EDGEML_* names the code reads: string literals in the sources, and the agent's generated option names."""
    from edgeml.device_agent.config.agent_config import env_name, iter_options

    names = {env_name(o.section, o.key) for o in iter_options()}
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            names |= set(re.findall(r"[\"'](EDGEML_[A-Z0-9_]+[A-Z0-9])[\"']", path.read_text()))
            names |= set(re.findall(r"envvar=[\"'](EDGEML_[A-Z0-9_]+)[\"']", path.read_text()))
    return names


def documented_environment(doc: Path) -> set[str]:
    """EDGEML_* names in the first column of `doc`'s environment tables."""
    return set(re.findall(r"^\| `(EDGEML_[A-Z0-9_]+)`", doc.read_text(), re.M))

"""`agent.toml` + `EDGEML_AGENT_*` environment variables → a checked, typed `AgentConfig`.

The sections below are the one place every option lives: its type, default and one-line description.
Loading, the environment overrides, `edgeml-agent init` and the table in docs/agent.md all read them.
Precedence: environment variable > file > default. `[agent]` keys are `EDGEML_AGENT_<KEY>`
(`EDGEML_AGENT_DEVICE_ID`); the other sections' are `EDGEML_AGENT_<SECTION>_<KEY>`
(`EDGEML_AGENT_BROKER_URL`, `EDGEML_AGENT_TELEMETRY_PERIOD_S`). Relative paths in the file are relative
to the file's folder; relative paths in the environment are relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from edgeml.errors import EdgemlError
from edgeml.option import option
from edgeml.protocol import ProtocolError, check_device_id
from edgeml.transport.broker_url import parse_broker_url

__all__ = [
    "AgentConfig",
    "AgentConfigError",
    "AgentSection",
    "BrokerSection",
    "DownloadSection",
    "EndpointSection",
    "OptionSpec",
    "TelemetrySection",
    "env_name",
    "iter_options",
    "load_config",
]

ENV_PREFIX = "EDGEML_AGENT_"
Check = Callable[[Any], "str | None"]  # value → what is wrong with it, or None


class AgentConfigError(EdgemlError):
    """The agent configuration is missing, unreadable, or has a bad or unknown key."""


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _device_id(value: str) -> str | None:
    try:
        check_device_id(value)
    except ProtocolError as exc:
        return exc.reason
    return None


def _broker_url(value: str) -> str | None:
    try:
        parse_broker_url(value)
    except EdgemlError as exc:
        return exc.message
    return None


def _listen(value: str) -> str | None:
    from edgeml.device_agent.serving.local_endpoint import parse_listen  # the endpoint owns its address format

    try:
        parse_listen(value)
    except ValueError as exc:
        return str(exc)
    return None


def _window(value: int) -> str | None:
    return None if 1 <= value <= 1024 else "must be between 1 and 1024 chunks"


def _alpha(value: float) -> str | None:
    return None if 1e-4 <= value <= 0.2 else "must be between 0.0001 and 0.2 (0.01 = quantiles within 1 %)"


@dataclass(frozen=True)
class AgentSection:
    """Who this device is and where it keeps its state."""

    device_id: str = option(
        "", "this device's id in the fleet: 1–64 of [A-Za-z0-9._-]", check=_device_id, required=True
    )
    target: str = option("", "the edgeml target this device runs, e.g. cpu-ort", required=True)
    state_dir: str = option("/var/lib/edgeml", "folder for model slots, downloads, spool and agent state", path=True)
    fleet_public_key: str = option("", "the fleet's Ed25519 public key (PEM) pinned on this device", required=True,
                                   path=True)  # fmt: skip
    runtimes: tuple[str, ...] = option(["onnxruntime"], "runtimes this device may run models with")
    threads: int = option(1, "inference threads per model", check=_positive)


@dataclass(frozen=True)
class BrokerSection:
    """The MQTT broker the fleet listens on; TLS with client certificates when the files are given."""

    url: str = option("", "mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS)", check=_broker_url, required=True)
    ca_file: str = option("", "CA bundle that signs the broker's certificate (TLS)", path=True)
    cert_file: str = option("", "this device's client certificate (TLS client auth)", path=True)
    key_file: str = option("", "the private key of the client certificate", path=True)
    keepalive_s: int = option(30, "MQTT keepalive in seconds", check=_positive)


@dataclass(frozen=True)
class TelemetrySection:
    """What the agent measures and how it sends it."""

    period_s: float = option(600.0, "seconds per telemetry batch", check=_positive)
    compress: bool = option(True, "send batches zlib-compressed (docs/protocol.md); false for a fleet older than that")
    spool_max_bytes: int = option(4 << 20, "disk cap for batches kept while offline (oldest dropped first)",
                                  check=_non_negative)  # fmt: skip
    upload_samples: bool = option(False, "send raw input samples to the fleet (off: they never leave the device)")
    samples_per_period: int = option(4, "at most this many raw samples per batch (with upload_samples)",
                                     check=_non_negative)  # fmt: skip
    sample_max_bytes: int = option(16384, "a raw sample larger than this is not sent", check=_positive)
    alpha: float = option(0.01, "relative accuracy of the latency sketch (0.01: every quantile within 1 %)",
                          check=_alpha)  # fmt: skip
    drift_psi_threshold: float = option(0.25, "PSI at or above which a feature is reported as drifted",
                                        check=_positive)  # fmt: skip
    drift_min_calls: int = option(200, "calls a period needs before its drift is judged", check=_positive)
    drift_report_interval_s: float = option(3600.0, "at most one drift event per model per this many seconds",
                                            check=_non_negative)  # fmt: skip


@dataclass(frozen=True)
class DownloadSection:
    """How artifacts are fetched over MQTT."""

    window: int = option(32, "chunks requested and not yet received, at most", check=_window)
    quiet_s: float = option(2.0, "seconds without a chunk before the missing ones are asked for again", check=_positive)


@dataclass(frozen=True)
class EndpointSection:
    """The local endpoint for programs that are not Python (off by default)."""

    listen: str = option("", "'' (off), http://127.0.0.1:PORT or unix:///PATH/agent.sock", check=_listen)
    max_body_bytes: int = option(16 << 20, "largest request body accepted", check=_positive)


@dataclass(frozen=True)
class AgentConfig:
    """The whole configuration; `source` names where it was read from (for error messages)."""

    agent: AgentSection = field(default_factory=AgentSection)
    broker: BrokerSection = field(default_factory=BrokerSection)
    telemetry: TelemetrySection = field(default_factory=TelemetrySection)
    download: DownloadSection = field(default_factory=DownloadSection)
    endpoint: EndpointSection = field(default_factory=EndpointSection)
    source: str = "defaults"

    @property
    def state_dir(self) -> Path:
        return Path(self.agent.state_dir)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> AgentConfig:
        return load_config(path, env)


SECTIONS: dict[str, type] = {
    "agent": AgentSection,
    "broker": BrokerSection,
    "telemetry": TelemetrySection,
    "download": DownloadSection,
    "endpoint": EndpointSection,
}


@dataclass(frozen=True)
class OptionSpec:
    """One option as documentation and the loaders see it."""

    section: str
    key: str
    type: Any
    default: Any
    help: str
    required: bool
    path: bool
    check: Check | None

    @property
    def env(self) -> str:
        return env_name(self.section, self.key)


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{key.upper()}" if section == "agent" else f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def iter_options() -> Iterator[OptionSpec]:
    """Every option, section by section, in declaration order."""
    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            m = f.metadata
            yield OptionSpec(section, f.name, hints[f.name], default, m["help"], m["required"], m["path"], m["check"])


def load_config(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read `path` (or only the environment when None), apply `EDGEML_AGENT_*` overrides, check every value."""
    env = os.environ if env is None else env
    data, base, source = _read_toml(path) if path is not None else ({}, Path.cwd(), "the environment")
    _reject_unknown(data, source)
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        values = {}
        for spec in (s for s in iter_options() if s.section == name):
            value = _value(spec, data.get(name, {}), env, base, source)
            if value is not None:
                values[spec.key] = value
        sections[name] = cls(**values)
    config = AgentConfig(**sections, source=source)
    _check_required(config, source)
    return config


def _read_toml(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Path, str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise AgentConfigError(
            f"agent config {path} does not exist",
            "write one with `edgeml-agent init ... > agent.toml`, or set EDGEML_AGENT_* variables",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentConfigError(f"cannot read agent config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AgentConfigError(f"agent config {path} is not valid TOML: {exc}") from None
    return data, path.resolve().parent, str(path)


def _reject_unknown(data: dict[str, Any], source: str) -> None:
    for name, table in data.items():
        if name not in SECTIONS or not isinstance(table, dict):
            raise AgentConfigError(
                f"{source}: unknown section [{name}]" + _did_you_mean(name, SECTIONS),
                f"sections are {', '.join(f'[{s}]' for s in SECTIONS)}",
            )
        keys = [f.name for f in dataclasses.fields(SECTIONS[name])]
        for key in table:
            if key not in keys:
                raise AgentConfigError(
                    f"{source}: unknown key {key!r} in [{name}]" + _did_you_mean(key, keys),
                    f"[{name}] takes {', '.join(keys)} (docs/agent.md lists them all)",
                )


def _did_you_mean(word: str, choices: Any) -> str:
    import difflib  # only on an error: the agent's footprint is counted in megabytes

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _value(spec: OptionSpec, table: dict[str, Any], env: Mapping[str, str], base: Path, source: str) -> Any:
    if spec.env in env:
        where, raw, folder = f"environment variable {spec.env}", env[spec.env], Path.cwd()
        value = _from_text(spec, raw, where)
    elif spec.key in table:
        where, value, folder = f"{source}: [{spec.section}] {spec.key}", table[spec.key], base
        value = _typed(spec, value, where)
    else:
        return None
    if spec.check is not None and (problem := spec.check(value)):
        raise AgentConfigError(f"{where} = {value!r}: {problem}", spec.help)
    if spec.path and value:
        value = str((folder / Path(value).expanduser()).resolve())
    return value


def _from_text(spec: OptionSpec, raw: str, where: str) -> Any:
    if spec.type is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise AgentConfigError(f"{where} = {raw!r} is not a boolean", "use true or false")
    if spec.type == tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    try:
        return spec.type(raw) if spec.type in (int, float) else raw
    except ValueError:
        raise AgentConfigError(f"{where} = {raw!r} is not {_type_name(spec)}", spec.help) from None


def _typed(spec: OptionSpec, value: Any, where: str) -> Any:
    if spec.type == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise AgentConfigError(f"{where} = {value!r} is not {_type_name(spec)}", spec.help)
        return tuple(value)
    if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) != (spec.type is bool) or not isinstance(value, spec.type):
        raise AgentConfigError(f"{where} = {value!r} is not {_type_name(spec)}", spec.help)
    return value


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _type_name(spec: OptionSpec) -> str:
    return "a list of strings" if spec.type == tuple[str, ...] else _TYPE_NAMES[spec.type]


def _check_required(config: AgentConfig, source: str) -> None:
    missing = [
        f"[{spec.section}] {spec.key} ({spec.env})"
        for spec in iter_options()
        if spec.required and not getattr(getattr(config, spec.section), spec.key)
    ]
    if missing:
        raise AgentConfigError(
            f"{source}: the agent config lacks {', '.join(missing)}",
            "set them in the file or the environment; `edgeml-agent init --help` shows how to write a config",
        )

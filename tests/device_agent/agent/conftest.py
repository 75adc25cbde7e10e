"""Fixtures for the agent runtime tests: packed artifacts, a config factory, and a small fleet double that
signs desired states, answers chunk requests (optionally damaging or withholding chunks) and collects
what the device sends. It stands in for the fleet service, which has its own tests."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgeml.artifact import load_private_key, pack
from edgeml.device_agent import Agent, AgentConfig, Installer
from edgeml.device_agent.config.agent_config import (
    AgentSection,
    BrokerSection,
    DownloadSection,
    EndpointSection,
    TelemetrySection,
)
from edgeml.protocol import (
    ArtifactRef,
    ChunkLayout,
    ChunkRequest,
    DesiredState,
    Kind,
    artifact_chunks_topic,
    chunk_request_topic,
    decode,
    desired_topic,
    encode,
    fleet_subscriptions,
    iter_chunks,
    parse_topic,
    sign_desired_state,
)
from edgeml.transport.memory_transport import MemoryBroker, MemoryTransport

DEVICE = "cam-042"


def _wait_until(predicate: Callable[[], Any], timeout: float = 8.0, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {getattr(predicate, '__name__', predicate)}")


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """wait_until(predicate, timeout=8) → the predicate's first truthy value, or AssertionError."""
    return _wait_until


@pytest.fixture(scope="session")
def digits_tar(tmp_path_factory, digits_artifact) -> Path:
    return pack(digits_artifact, tmp_path_factory.mktemp("tars") / "digits-1.2.3.tar")


@pytest.fixture(scope="session")
def newer_tar(tmp_path_factory, newer_artifact) -> Path:
    return pack(newer_artifact, tmp_path_factory.mktemp("tars") / "digits-1.3.0.tar")


@pytest.fixture
def make_config(tmp_path, keypair) -> Callable[..., AgentConfig]:
    """AgentConfig for device cam-042 in tmp_path/agent; keyword overrides per section: telemetry={...}."""

    def make(url: str = "mqtt://127.0.0.1:1", **sections: dict[str, Any]) -> AgentConfig:
        agent = {"device_id": DEVICE, "target": "cpu-ort", "state_dir": str(tmp_path / "agent"),
                 "fleet_public_key": str(keypair[1])} | sections.get("agent", {})  # fmt: skip
        return AgentConfig(
            agent=AgentSection(**agent),
            broker=BrokerSection(url=url, **sections.get("broker", {})),
            telemetry=TelemetrySection(**({"period_s": 3600.0} | sections.get("telemetry", {}))),
            download=DownloadSection(**({"quiet_s": 0.3} | sections.get("download", {}))),
            endpoint=EndpointSection(**sections.get("endpoint", {})),
        )

    return make


@pytest.fixture
def agent_env() -> Callable[[AgentConfig], dict[str, str]]:
    """agent_env(config) → the EDGEML_AGENT_* variables that configure an agent like `config` (for a child
    process or the CLI)."""

    def env(config: AgentConfig) -> dict[str, str]:
        a = config.agent
        return {"EDGEML_AGENT_DEVICE_ID": a.device_id, "EDGEML_AGENT_TARGET": a.target,
                "EDGEML_AGENT_STATE_DIR": a.state_dir, "EDGEML_AGENT_FLEET_PUBLIC_KEY": a.fleet_public_key,
                "EDGEML_AGENT_BROKER_URL": config.broker.url}  # fmt: skip

    return env


@pytest.fixture
def preinstall(keypair) -> Callable[[AgentConfig, Path], None]:
    """Commit an artifact into the config's state folder the way a factory image would."""

    def install(config: AgentConfig, artifact: Path) -> None:
        result = Installer(config.state_dir, keypair[1], "cpu-ort", ["onnxruntime"]).install(artifact)
        assert result.ok, result.describe()

    return install


class FleetDouble:
    """Signs desired states for DEVICE and serves chunks of the artifacts it was given."""

    def __init__(self, transport: Any, private_key_path: Path) -> None:
        self.transport = transport
        self.key = load_private_key(private_key_path)
        self.artifacts: dict[str, tuple[bytes, ChunkLayout]] = {}
        self.messages: dict[Kind, queue.Queue[tuple[str, Any]]] = {k: queue.Queue() for k in Kind}
        self.requests: list[ChunkRequest] = []
        self.served: list[int] = []
        self.damage: Callable[[int, bytes], bytes | None] | None = None  # (index, message) → sent instead / None
        self.answering = threading.Event()
        self.answering.set()
        self.sequence = 0
        for topic_filter in fleet_subscriptions():
            transport.subscribe(topic_filter, self._collect)

    def add(self, tar: Path, chunk_size: int = 4096) -> ArtifactRef:
        data = tar.read_bytes()
        layout = ChunkLayout.of(data, chunk_size)
        self.artifacts[layout.sha256] = (data, layout)
        self.transport.subscribe(chunk_request_topic(DEVICE), self._answer)
        name, version = tar.stem.rsplit("-", 1)
        major, minor, patch = (int(p) for p in version.split("."))
        release = major * 1_000_000 + minor * 1_000 + patch
        return ArtifactRef(name, version, release, layout.sha256, layout.size, chunk_size, layout.count, "cpu-ort")

    def desire(self, artifact: ArtifactRef, *, device: str = DEVICE, sequence: int | None = None,
               allow_rollback: bool = False, key: Any = None, publish: bool = True,
               min_release: int | None = None) -> bytes:  # fmt: skip
        """Sign and publish (retained) a desired state; returns the payload."""
        self.sequence = sequence if sequence is not None else self.sequence + 1
        now = int(time.time())
        state = DesiredState(device, artifact, "rollout-1", self.sequence, now, now + 3600, allow_rollback,
                             min_release)  # fmt: skip
        payload = encode(sign_desired_state(state, key or self.key))
        if publish:
            self.transport.publish(desired_topic(DEVICE), payload, retain=True)
        return payload

    def next(self, kind: Kind, timeout: float = 8.0, where: Callable[[Any], bool] | None = None) -> Any:
        """The next message of `kind` the device sent (matching `where`), decoded."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind.value} message within {timeout} s")
            try:
                _, message = self.messages[kind].get(timeout=left)
            except queue.Empty:
                continue
            if where is None or where(message):
                return message

    def event(self, kind: str, timeout: float = 8.0) -> Any:
        return self.next(Kind.EVENT, timeout, lambda e: e.kind == kind)

    def _collect(self, topic: str, payload: bytes) -> None:
        parsed = parse_topic(topic)
        if parsed.kind is Kind.CHUNK_REQUEST:
            return
        self.messages[parsed.kind].put((topic, decode(parsed.kind, payload)))

    def _answer(self, topic: str, payload: bytes) -> None:
        request = decode(Kind.CHUNK_REQUEST, payload)
        self.requests.append(request)
        if not self.answering.is_set() or request.artifact not in self.artifacts:
            return
        data, layout = self.artifacts[request.artifact]
        for index, message in zip(request.indices(), iter_chunks(data, layout, request.indices()), strict=True):
            if self.damage is not None:
                message = self.damage(index, message)
                if message is None:
                    continue
            self.served.append(index)
            self.transport.publish(artifact_chunks_topic(layout.sha256), message)


@pytest.fixture
def memory_fleet(keypair):
    """(MemoryBroker, a FleetDouble connected to it); agents get `MemoryTransport(broker, DEVICE)`."""
    broker = MemoryBroker()
    fleet_transport = MemoryTransport(broker, "fleet")
    fleet_transport.connect()
    return broker, FleetDouble(fleet_transport, keypair[0])


@pytest.fixture
def mqtt_fleet(request, keypair):
    """Factory of FleetDoubles on their own connections to the test's Mosquitto (closed after the test)."""
    from edgeml.transport.mqtt_transport import MqttTransport

    broker = request.getfixturevalue("broker")
    made = []

    def make(name: str = "fleet") -> FleetDouble:
        transport = MqttTransport(broker.url, f"{name}-{len(made)}")
        fleet = FleetDouble(transport, keypair[0])
        transport.connect(timeout=5)
        made.append(transport)
        return fleet

    yield make
    for transport in made:
        transport.close()


@pytest.fixture
def running_agents():
    """Start agents through this list's `start(config, transport)`; every one is stopped after the test."""

    class Starter(list):
        def start(self, config: AgentConfig, transport: Any = None) -> Agent:
            agent = Agent(config, transport).start()
            self.append(agent)
            return agent

    starter = Starter()
    yield starter
    for agent in starter:
        with contextlib.suppress(Exception):
            agent.stop(timeout=5)


@pytest.fixture(scope="session")
def hotfix_tar(tmp_path_factory, keypair) -> Path:
    """The digits model compiled again as 1.2.4: a hotfix above 1.2.3 and below 1.3.0."""
    import edgeml

    out = tmp_path_factory.mktemp("artifacts-hotfix") / "digits-1.2.4"
    model = Path(__file__).resolve().parents[3] / "examples" / "digits" / "model.onnx"
    edgeml.compile(str(model), "cpu-ort", key=keypair[0], out=out, cache_dir=tmp_path_factory.mktemp("hotfix-cache"),
                   version="1.2.4")  # fmt: skip
    return pack(out, tmp_path_factory.mktemp("tars") / "digits-1.2.4.tar")

"""A whole fleet on one machine: a broker (the embedded one, or a given URL), the fleet service, one real device
agent and N simulated devices that speak the real protocol. Traffic is generated here: the agent serves
digits (drifted ones once drift is injected) and gets ground-truth feedback; the simulated devices report
histograms with the same drifted share. Used by `edgeml demo` and by the loop's end-to-end tests."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeml.artifact import load_private_key, load_public_key
from edgeml.device_agent import Agent
from edgeml.fleet import Fleet, FleetService
from edgeml.fleet.simulated_device import Fault, SimulatedDevice
from edgeml.flows.drift_resample import resample_like
from edgeml.transport.mqtt_transport import MqttTransport

__all__ = ["LocalFleet", "free_port"]

log = logging.getLogger(__name__)
TARGET = "cpu-ort"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalFleet:
    root: Path
    key: Path  # the fleet's private key (signs artifacts and desired states)
    data: Path  # examples/digits: eval.npz feeds the agent
    devices: int = 6
    broker_url: str | None = None  # None: start the embedded broker on a free port
    drift: float = 0.0  # share of inputs moved to the top reference bin (simulated devices and the agent)
    telemetry_s: float = 1.0
    fleet: Fleet | None = None
    service: FleetService | None = None
    agent: Agent | None = None
    sims: list[SimulatedDevice] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per telemetry round, for the report
    _broker: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _drift_version: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> LocalFleet:
        try:
            return self._start()
        except BaseException:
            self.stop()  # NOTE: what started before the failure (broker, service, agent) stops with it
            raise

    def _start(self) -> LocalFleet:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.broker_url is None:
            from edgeml.fleet.embedded_broker import EmbeddedBroker  # Mosquitto where installed, else amqtt

            self._broker = EmbeddedBroker(free_port())
            self._broker.start()
            self.broker_url = self._broker.url
        self.fleet = Fleet(self.db_path, self.store_path, load_private_key(self.key))
        self.service = FleetService(self.fleet, MqttTransport(self.broker_url, "edgeml-demo-fleet"),
                                    chunk_size=16 * 1024, tick_s=0.2)  # fmt: skip
        self.service.start()
        self.agent = Agent.from_config(self._agent_config()).start()
        public = load_public_key(self.public_key)
        for i in range(self.devices):
            device_id = f"sim-{i:02d}"
            sim = SimulatedDevice(device_id, TARGET, MqttTransport(self.broker_url, device_id), public, seed=i)
            sim.start()
            self.sims.append(sim)
        self._thread = threading.Thread(target=self._traffic, name="edgeml-demo-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        try:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=10)
            for sim in self.sims:
                sim.transport.close()
            if self.agent is not None:
                self.agent.stop()
            if self.service is not None:
                self.service.stop()
        finally:  # NOTE: the broker is a child process: it must not outlive a demo that failed to stop cleanly
            if self._broker is not None:
                self._broker.stop()
                self._broker = None

    @property
    def broker_kind(self) -> str:
        return self._broker.kind if self._broker is not None else "given"

    @property
    def db_path(self) -> Path:
        return self.root / "fleet.sqlite"

    @property
    def store_path(self) -> Path:
        return self.root / "store"

    @property
    def public_key(self) -> Path:
        from edgeml.artifact.keys import public_path_for

        return public_path_for(self.key)

    @property
    def device_ids(self) -> list[str]:
        return ["agent-00", *(s.device_id for s in self.sims)]

    # -- drift -----------------------------------------------------------------------------------------------
    def inject_drift(self, share: float, version: str) -> None:
        """From now on `share` of every input value lands in the top reference bin of `version`'s profile
        (on the simulated devices while they run `version`; for the agent, its real inputs change)."""
        self.drift, self._drift_version = share, version
        for sim in self.sims:
            sim.faults = {version: Fault(drift=share)}

    # -- state -----------------------------------------------------------------------------------------------
    def versions(self) -> dict[str, str | None]:
        out = {"agent-00": (self.agent.serving.manifest["version"] if self.agent and self.agent.serving else None)}
        return out | {s.device_id: (s.current.version if s.current else None) for s in self.sims}

    def wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what}: not reached in {timeout:g} s")

    # -- internals -------------------------------------------------------------------------------------------
    def _agent_config(self) -> Path:
        from edgeml.device_agent.config.config_template import render_config

        values = {
            ("agent", "device_id"): "agent-00", ("agent", "target"): TARGET,
            ("agent", "state_dir"): str((self.root / "agent-00").resolve()),
            ("agent", "fleet_public_key"): str(self.public_key.resolve()), ("broker", "url"): self.broker_url,
        }  # fmt: skip
        path = self.root / "agent-00.toml"
        path.write_text(render_config(values))
        return path

    def _traffic(self) -> None:
        with np.load(self.data / "eval.npz") as z:
            x, labels = z["input"], z["labels"]
        rng = np.random.default_rng(0)
        while not self._stop.wait(self.telemetry_s):
            try:
                self._round(x, labels, rng)
            except Exception:  # NOTE: a device that is mid-install refuses traffic; the next round goes on
                log.debug("traffic round failed", exc_info=True)

    def _round(self, x: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> None:
        for sim in self.sims:
            sim.poll(quiet_s=2.0)
            if sim.current is not None:
                sim.emit_telemetry(calls=200, period_s=int(self.telemetry_s))
        row = {"t": time.time(), "versions": self.versions(), "agent_accuracy": None, "drifted": self.drift > 0}
        if self.agent is not None and self.agent.serving is not None:
            row["agent_accuracy"] = self._agent_round(x, labels, rng)
        self.history.append(row)

    def _agent_round(self, x: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> float:
        idx = rng.choice(len(x), size=48, replace=False)
        batch = x[idx]
        if self.drift > 0:
            batch = self._drifted(batch, int(rng.integers(1 << 30)))
        correct = 0
        for i in range(len(idx)):
            y = self.agent.predict({"input": batch[i : i + 1]})
            correct += int(y["logits"].argmax()) == int(labels[idx[i]])
            self.agent.feedback(y.request_id, int(labels[idx[i]]))
        self.agent.send_telemetry()
        return 100.0 * correct / len(idx)

    def _drifted(self, batch: np.ndarray, seed: int) -> np.ndarray:
        """The same shift the simulated devices report, applied to real inputs: against the profile of the
        release the drift was injected on, `drift` of the values moved to its top bin."""
        feature = self._drift_profile()
        counts = np.asarray(feature["counts"], dtype=np.float64)
        target = counts * (1 - self.drift)
        target[-1] += self.drift * counts.sum()
        return resample_like(batch, feature["edges"], target.tolist(), 0, low=0.0, high=1.0, seed=seed)

    def _drift_profile(self) -> dict[str, Any]:
        rows = [a for a in self.fleet.artifacts.all() if a["version"] == self._drift_version]
        return rows[0]["manifest"]["reference_profile"]["inputs"]["input"]["features"][0]

"""The device agent: serves the committed model in-process, applies signed updates from the fleet, and
reports what it sees. Thin orchestration; each part lives in its own module:

    predict ─► ServingModel.session.run ─► TelemetryCollector.record (a deque append)
    MQTT desired/chunks ─► UpdateWorker (own thread) ─► Installer (the update table) ─► on_event: event, status,
                           model swap on `committed`
    MQTT bench jobs ─► BenchWorker (own thread) ─► scratch folder: fetch, verify, time ─► bench_result
    housekeeping thread ─► ConnectionWatcher (hello, status, spool replay) · drain · TelemetrySender each period

```python
agent = Agent.from_config("/etc/edgeml/agent.toml").start()
y = agent.predict({"input": x})          # Prediction: outputs + request_id + latency_ms
agent.feedback(y.request_id, label=3)    # optional ground truth → accuracy telemetry
agent.stop()
```

The broker may be unreachable at start: the agent serves its committed model, spools telemetry and events,
and keeps reconnecting in the background.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from edgeml.artifact import load_public_key
from edgeml.atomic_files import write_json_atomic
from edgeml.device_agent.agent_status import AGENT_FOLDER, HEARTBEAT_NAME, LAST_TELEMETRY_NAME, read_status
from edgeml.device_agent.bench.bench_worker import BenchWorker
from edgeml.device_agent.config.agent_config import AgentConfig, load_config
from edgeml.device_agent.messaging.agent_transport import build_transport
from edgeml.device_agent.messaging.connection_watcher import ConnectionWatcher
from edgeml.device_agent.messaging.event_reporter import EventReporter
from edgeml.device_agent.messaging.outbox import Outbox
from edgeml.device_agent.messaging.sequence_counter import SequenceCounter
from edgeml.device_agent.messaging.spool import Spool
from edgeml.device_agent.messaging.status_reporter import StatusReporter
from edgeml.device_agent.serving.prediction import PredictError, Prediction
from edgeml.device_agent.telemetry.drift_alarm import DriftAlarm
from edgeml.device_agent.telemetry.telemetry_batch import TelemetryBatch
from edgeml.device_agent.telemetry.telemetry_collector import TelemetryCollector
from edgeml.device_agent.telemetry.telemetry_sender import TelemetrySender
from edgeml.device_agent.update.installer import Installer
from edgeml.device_agent.update.lifecycle import State
from edgeml.device_agent.update.self_test import SelfTestPolicy
from edgeml.device_agent.update.update_worker import UpdateSettings, UpdateWorker
from edgeml.errors import EdgemlError
from edgeml.protocol import DesiredStateGuard, bench_topic, desired_topic, encode, status_topic
from edgeml.transport import Transport, Will

if TYPE_CHECKING:
    from edgeml.device_agent.serving.serving_model import ServingModel

__all__ = ["Agent"]

log = logging.getLogger(__name__)

_now = time.perf_counter
_STATES = frozenset(state.value for state in State)  # installer events that are lifecycle states: status changes
_TICK_S = 0.1  # housekeeping: connection watch, telemetry drain
_HEARTBEAT_S = 5.0
_GOODBYE_S = 0.3
_CONNECT_WAIT_S = 1.0  # the first connect attempt's wait; after it paho keeps retrying in the background


class Agent:
    def __init__(
        self, config: AgentConfig, transport: Transport | None = None, *, self_test: SelfTestPolicy | None = None
    ) -> None:
        """Build every part (nothing runs until `start()`); `transport` defaults to MQTT from `[broker]`."""
        self.config = config
        a = config.agent
        config.state_dir.mkdir(parents=True, exist_ok=True)
        key = load_public_key(a.fleet_public_key)
        self.folder = config.state_dir / AGENT_FOLDER  # sequence counters, heartbeat, last telemetry summary
        # NOTE: the installer reports through self.reporter, built below; it emits nothing before start()
        self.installer = Installer(config.state_dir, key, a.target, a.runtimes, on_event=self._on_installer_event,
                                   self_test=self_test, threads=a.threads)  # fmt: skip
        self.status_reporter = StatusReporter(a.device_id, a.target, a.runtimes, self.installer)
        self.transport = transport or build_transport(config, self._will())
        self.spool = Spool(config.state_dir / "spool", config.telemetry.spool_max_bytes)
        self.outbox = Outbox(self.transport, self.spool)
        self.reporter = EventReporter(a.device_id, self.outbox, SequenceCounter(self.folder / "event_seq.json"))
        self.worker = self._update_worker(key)
        self.installer.fetch = self.worker.fetch  # the table's `downloading` step hands updates to the worker
        self.bench = BenchWorker(a.device_id, config.state_dir, key, a.target, a.runtimes, self.transport,
                                 self.reporter, busy_topic=self.worker.fetching_topic)  # fmt: skip
        self.collector, self.sender = self._telemetry()
        self.watcher = ConnectionWatcher(self.transport, self._on_connected)
        self._record = self.collector.record
        self._serving: ServingModel | None = None
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._loop_thread: threading.Thread | None = None
        self._endpoint: Any = None
        self._started_at = 0.0

    def _update_worker(self, key: Any) -> UpdateWorker:
        a, d = self.config.agent, self.config.download
        settings = UpdateSettings(a.device_id, self.config.state_dir, d.window, d.quiet_s)
        guard = DesiredStateGuard(a.device_id, key)
        return UpdateWorker(settings, self.installer, guard, self.reporter, self.transport)

    def _telemetry(self) -> tuple[TelemetryCollector, TelemetrySender]:
        t, folder = self.config.telemetry, self.folder
        samples = t.samples_per_period if t.upload_samples else 0
        collector = TelemetryCollector(t.alpha, max_samples=samples, sample_max_bytes=t.sample_max_bytes)
        alarm = DriftAlarm(t.drift_psi_threshold, t.drift_min_calls, t.drift_report_interval_s)
        counter = SequenceCounter(folder / "telemetry_seq.json")
        sender = TelemetrySender(self.config.agent.device_id, collector, self.outbox, counter, alarm, self.reporter,
                                 t.period_s, folder / LAST_TELEMETRY_NAME, compress=t.compress)  # fmt: skip
        return collector, sender

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None, transport: Transport | None = None, **kwargs: Any
    ) -> Agent:
        """An agent for the config file at `path` (None: `EDGEML_AGENT_*` variables only); not started."""
        return cls(load_config(path), transport, **kwargs)

    # ---- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> Agent:
        """Recover any interrupted install, load the committed model, start the update worker, the
        housekeeping thread (which connects) and the local endpoint. Returns at once, even offline."""
        self._started_at = time.time()
        self.installer.resume()
        self._load_serving()
        self.transport.subscribe(desired_topic(self.config.agent.device_id), self.worker.on_desired)
        self.worker.start()
        self.transport.subscribe(bench_topic(self.config.agent.device_id), self.bench.on_job)
        self.bench.start()
        self._loop_thread = threading.Thread(target=self._loop, name="edgeml-agent-housekeeping", daemon=True)
        self._loop_thread.start()
        if self.config.endpoint.listen:
            from edgeml.device_agent.serving.local_endpoint import LocalEndpoint

            self._endpoint = LocalEndpoint(self, self.config.endpoint.listen, self.config.endpoint.max_body_bytes)
            self._endpoint.start()
        log.info("agent %s started; serving %s", self.config.agent.device_id,
                 self._serving.describe() if self._serving else "nothing yet")  # fmt: skip
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Send the last telemetry batch, mark the device offline, disconnect; the spool keeps what did not go."""
        self._stopping.set()
        if self._endpoint is not None:
            self._endpoint.stop()
        if self._loop_thread is not None:
            self._loop_thread.join(timeout)
        self.worker.stop(timeout)
        self.bench.stop(timeout)
        self.sender.send_now()
        if self.transport.connected:
            offline = self.status_reporter.status(online=False)
            self.transport.publish(status_topic(self.config.agent.device_id), encode(offline), qos=1, retain=True)
            # NOTE: closing the socket with the broker's PUBACK still unread makes the kernel send a reset, and
            # the broker then drops what it had not read yet (this goodbye, the DISCONNECT) and publishes the
            # last will instead: give the acknowledgements a moment to arrive
            time.sleep(_GOODBYE_S)
        self.transport.close()
        self._heartbeat(running=False)

    def __enter__(self) -> Agent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- inference --------------------------------------------------------------------------------------

    def predict(self, feeds: dict[str, Any], request_id: Any = None) -> Prediction:
        """Run the committed model on `feeds` (input name → array); latency and drift are recorded."""
        serving = self._serving
        if serving is None:
            raise PredictError("no_model", "no model is committed on this device yet",
                               "wait for the fleet to deploy one (edgeml-agent status shows progress)")  # fmt: skip
        rid = next(self._ids) if request_id is None else request_id
        start = _now()
        try:
            outputs = serving.session.run(feeds)
        except Exception as exc:
            self._record((rid, serving, _now() - start, (), None))
            raise PredictError(
                "model_error",
                f"{serving.describe()} failed on this request: {exc}",
                "check the input names, dtypes and shapes against the model's signature",
            ) from exc
        latency = _now() - start
        self._record((rid, serving, latency, serving.bins.snapshot(feeds), outputs))
        # NOTE: dict's own constructor and two slot writes; every line here is on the predict path (benchmarks/)
        prediction = Prediction(outputs)
        prediction.request_id, prediction.latency_ms = rid, latency * 1000.0
        return prediction

    def feedback(self, request_id: Any, label: Any, output: str | None = None) -> bool:
        """Ground truth for a recent prediction; counted in the accuracy telemetry. False if it is unknown."""
        return self.collector.feedback(request_id, label, output)

    @property
    def serving(self) -> ServingModel | None:
        return self._serving

    def status(self) -> dict[str, Any]:
        """What `edgeml-agent status` shows, plus this process's live view."""
        serving = self._serving
        return {
            **read_status(self.config),
            "connected": self.transport.connected,
            "serving": serving.model.to_dict() if serving else None,
            "download": self.worker.progress(),
            "pending_calls": self.collector.pending,
            "telemetry_bytes_sent": self.sender.sent_bytes,
        }

    def send_telemetry(self) -> list[TelemetryBatch]:
        """Close the telemetry period now and send (or spool) its batches."""
        return self.sender.send_now()

    # ---- internals --------------------------------------------------------------------------------------

    def _loop(self) -> None:
        self._connect()
        beat = 0.0
        while not self._stopping.wait(_TICK_S):
            try:
                self.watcher.poll()
                self.collector.drain()
                self.sender.maybe_send()
                if self.watcher.connected:
                    self.outbox.flush()
                if time.monotonic() - beat >= _HEARTBEAT_S:
                    beat = time.monotonic()
                    self._heartbeat(running=True)
            except Exception:
                log.exception("agent housekeeping failed; carrying on")

    def _connect(self) -> None:
        try:
            self.transport.connect(timeout=_CONNECT_WAIT_S)
        except EdgemlError as exc:
            log.warning("fleet broker not reachable yet (%s); serving the committed model and retrying", exc.message)

    def _on_connected(self) -> None:
        self.status_reporter.publish(self.transport, with_hello=True)
        self.outbox.flush()
        self.worker.on_connected()

    def _on_installer_event(self, kind: str, **fields: Any) -> None:
        """Every state the update table enters: the fleet's event, the new model served, the status."""
        self.reporter.installer_event(kind, **fields)
        if kind == State.COMMITTED.value and self._serving_is_stale():
            self._load_serving()
        if kind in _STATES:
            self.status_reporter.publish(self.transport)

    def _serving_is_stale(self) -> bool:
        serving, state = self._serving, self.installer.state()
        active = state.slots.get(state.active) if state.active else None
        return active is not None and (
            serving is None or (serving.slot, serving.model.sha256) != (state.active, active.sha256)
        )

    def _load_serving(self) -> None:
        try:
            active = self.installer.active_model()
            if active is None:
                return
            # NOTE: imported here: a model brings numpy and its runtime, an agent without one carries neither
            from edgeml.device_agent.serving.serving_model import ServingModel

            state = self.installer.state()
            slot = state.active or ""
            record = state.slots.get(slot)
            sha = record.artifact if record is not None else None
            serving = ServingModel.open(active, slot, sha, self.config.agent.threads)
        except Exception as exc:
            log.exception("the committed model cannot be loaded")
            self.reporter.report("model_load_failed", "committed", False, f"{type(exc).__name__}: {exc}"[:1024])
            return
        self._serving = serving  # one reference swap: calls in flight finish on the model they started with
        log.info("serving %s", serving.describe())

    def _will(self) -> Will:
        status = self.status_reporter.status(online=False)
        return Will(status_topic(self.config.agent.device_id), encode(status), qos=1, retain=True)

    def _heartbeat(self, running: bool) -> None:
        serving = self._serving
        beat = {
            "pid": os.getpid() if running else None, "started_at": self._started_at, "updated_at": time.time(),
            "connected": self.transport.connected, "serving": serving.model.to_dict() if serving else None,
        }  # fmt: skip
        try:
            write_json_atomic(self.folder / HEARTBEAT_NAME, beat, durable=False)
        except OSError as exc:
            log.debug("heartbeat not written: %s", exc)

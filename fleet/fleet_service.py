"""The fleet service: MQTT intake → registry, events, telemetry, chunk serving; rollouts → desired states.

Messages are decoded on the network thread and handed to one worker thread, this process's only writer of
the database. Several instances may serve one fleet (PostgreSQL, --share-group): each applies the intake the
broker gives it, and only the one holding the lease (fleet/instance_lease.py) steps rollouts, scans for
retraining, publishes the desired-state outbox and serves chunk streams, its steps fenced by the lease.

A message that does not decode, or that names another device than its topic, is rejected,
counted by reason and logged; it never stops the service. A message from a device whose hello this instance has
not seen is counted as `unknown_device` and makes the service ask the broker for that device's retained hello
again (fleet/hello_requests.py): a lost hello would otherwise leave the device unknown until it reconnects.
Desired states are a durable outbox: every tick publishes (signed, retained) each device's row whose sequence has
not been published by this process yet — after a restart that is all of them, and devices ignore a sequence they
already have.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeml.fleet.artifact_store import ArtifactStore
from edgeml.fleet.bench_jobs import BenchJobs
from edgeml.fleet.chunk_server import DEFAULT_EGRESS_BYTES_S, DEFAULT_STREAM_BYTES_S, ChunkServer
from edgeml.fleet.database import Database, FleetError
from edgeml.fleet.desired_states import DesiredRow, DesiredStates
from edgeml.fleet.device_registry import DeviceRegistry
from edgeml.fleet.event_log import EventLog
from edgeml.fleet.experiments import Experiments
from edgeml.fleet.hello_requests import HelloRequests
from edgeml.fleet.instance_lease import InstanceLease
from edgeml.fleet.lifecycles import Moved
from edgeml.fleet.rejection_log import TOPIC_CHARS, RejectionLog, clip
from edgeml.fleet.retraining import Retraining
from edgeml.fleet.rollout_engine import RolloutEngine
from edgeml.fleet.telemetry_intake import TelemetryIntake
from edgeml.fleet.wave_health import WaveHealth
from edgeml.protocol import (
    DEFAULT_CHUNK_SIZE,
    ArtifactRef,
    BenchJob,
    BenchResult,
    ChunkLayout,
    ChunkRequest,
    DesiredState,
    Event,
    Hello,
    Kind,
    ProtocolError,
    Status,
    Telemetry,
    bench_topic,
    decode_published,
    desired_topic,
    encode,
    fleet_subscriptions,
    sign_bench_job,
    sign_desired_state,
)
from edgeml.transport import Transport

__all__ = ["Fleet", "FleetService"]

log = logging.getLogger(__name__)
DESIRED_TTL_S = 24 * 3600
RETRAIN_SCAN_S = 60.0
CHUNK_PACE_S = 0.01
BATCH, BATCH_S = 200, 0.2  # intake messages per transaction, and the longest it stays open (see pump)
# NOTE: with --share-group the broker hands each message to one instance, and a killed instance loses what it had
# received but not yet applied. Statuses and events (few, and what rollouts move on) go to every instance
# instead: applying them is idempotent, so one lost with an instance is still applied by another. Chunk requests
# too: only the leader streams. Hellos reach every instance too (unshared: retained ones go to plain
# subscriptions only); telemetry (the bulk) stays split.
EVERY_INSTANCE = (Kind.STATUS, Kind.EVENT, Kind.CHUNK_REQUEST)
PARKED_STATUSES = 10_000  # statuses of devices whose hello has not arrived yet, at most


class Fleet:
    """The fleet's state and logic without the network: what the CLI uses directly on the database."""

    def __init__(self, db_path: str | Path, store_dir: str | Path, key: Ed25519PrivateKey) -> None:
        self.db = Database(db_path)
        self.key = key
        self.devices = DeviceRegistry(self.db)
        self.artifacts = ArtifactStore(self.db, store_dir, key.public_key())
        self.telemetry = TelemetryIntake(self.db)
        self.events = EventLog(self.db)
        self.desired = DesiredStates(self.db)
        self.rollouts = RolloutEngine(self.db, self.artifacts, self.devices, WaveHealth(self.db, self.telemetry))
        self.experiments = Experiments(self.db, self.artifacts, self.devices, self.telemetry)
        self.retraining = Retraining(self.db)
        self.bench = BenchJobs(self.db, self.artifacts, self.devices)


class FleetService:
    def __init__(
        self,
        fleet: Fleet,
        transport: Transport,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        tick_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        share_group: str | None = None,
        egress_bytes_s: float = DEFAULT_EGRESS_BYTES_S,
        stream_bytes_s: float = DEFAULT_STREAM_BYTES_S,
        lease: InstanceLease | None = None,
    ) -> None:
        self.fleet, self.transport, self.clock, self.tick_s = fleet, transport, clock, tick_s
        self.lease = lease  # NOTE: None: the only instance (tests, embedded uses): it always drives
        self.chunk_size = chunk_size
        self.chunks = ChunkServer(
            fleet.artifacts, transport, chunk_size, clock=clock, egress_bytes_s=egress_bytes_s,
            stream_bytes_s=stream_bytes_s,
        )  # fmt: skip
        self.share_group = share_group
        self._inbox: queue.Queue = queue.Queue(maxsize=100_000)
        self._dropped, self._dropped_lock = 0, threading.Lock()  # NOTE: what the full inbox refused, not yet stored
        self.rejections = RejectionLog(log)
        self._published: dict[str, int] = {}
        self._bench_published: set[tuple[str, str]] = set()  # (job id, device id) this process has sent
        self._parked: dict[str, Status] = {}  # device id → its latest status, received before its hello
        self._registered: set[str] = set()
        self.hellos = HelloRequests(transport, self._receive)  # NOTE: asks again for hellos that got lost
        self._last_scan = 0.0
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        # NOTE: called on the worker thread with every non-empty list of committed transitions (the MLflow
        # alias mirror listens here); a listener must return quickly and never raise
        self.on_moves: list[Callable[[list[Moved]], None]] = []

    def start(self, connect_timeout: float = 10.0, worker: bool = True) -> None:
        for topic_filter in fleet_subscriptions(self.share_group, every_instance=EVERY_INSTANCE):
            self.transport.subscribe(topic_filter, self._receive)
        self.transport.connect(connect_timeout)
        if not worker:
            return
        self._worker = threading.Thread(target=self._run, name="edgeml-fleet", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
        self.transport.close()

    def _receive(self, topic: str, payload: bytes) -> None:
        try:
            self._inbox.put_nowait((topic, payload))
        except queue.Full:
            # NOTE: counted here, stored by the worker: this is the MQTT network thread, and the database is the
            # worker's while a batch runs; waiting for it here stalled every chunk publish (1,000 devices, one
            # instance: a wave stuck for minutes while its devices' chunk requests piled up)
            with self._dropped_lock:
                self._dropped += 1

    def _run(self) -> None:
        next_tick = 0.0
        while not self._stop.is_set():
            wait = max(0.0, next_tick - time.monotonic())
            if self.chunks.pending:
                wait = min(wait, CHUNK_PACE_S)  # NOTE: paced streams publish a little at a time
            with contextlib.suppress(queue.Empty):
                self._apply(*self._inbox.get(timeout=wait))
            # NOTE: what queued meanwhile, so one chunk flush serves every request in it; no more: ticks must run
            self.pump(min(self._inbox.qsize(), BATCH))
            self.store_dropped()
            if time.monotonic() >= next_tick:
                self.tick()
                next_tick = time.monotonic() + self.tick_s

    def pump(self, most: int | None = None) -> int:
        """Apply every message received so far (tests and single-threaded drivers call this instead of start),
        up to BATCH messages per transaction: each message all or nothing on its own (a savepoint), one commit
        for the batch. A batch holds the writers' turn, so it ends after BATCH_S seconds whatever its size:
        other writers (another instance's step, an operator's command) wait at most that long for it. `most`:
        apply at most that many, so the worker still ticks under a steady inflow (None: until empty)."""
        n, budget = 0, math.inf if most is None else most
        while n < budget and not self._inbox.empty():
            try:
                with self.fleet.db.batch():
                    n += self._apply_some(int(min(BATCH, budget - n)), time.monotonic() + BATCH_S)
            except FleetError as exc:  # NOTE: the batch's commit failed (database lost): its messages are lost
                log.error("could not commit a batch of intake: %s", exc)
            self.chunks.flush()  # NOTE: after every batch: chunk streams go on while intake is busy
        self.chunks.flush()
        return n

    def store_dropped(self) -> int:
        """Add what the full inbox refused since the last call to the `inbox_full` rejection count."""
        with self._dropped_lock:
            n, self._dropped = self._dropped, 0
        if n:
            try:
                self.fleet.events.reject("inbox_full", n)
            except FleetError as exc:
                log.error("could not count %d message(s) the full inbox refused: %s", n, exc)
                with self._dropped_lock:
                    self._dropped += n
        return n

    def _apply_some(self, most: int, until: float) -> int:
        for n in range(most):
            if time.monotonic() >= until:
                return n
            try:
                self._apply(*self._inbox.get_nowait())
            except queue.Empty:
                return n
        return most

    def _apply(self, topic: str, payload: bytes) -> None:
        try:
            self._handle(topic, payload)
        except FleetError as exc:  # a locked or full database: logged; the device re-sends, the service goes on
            log.error("could not apply a message on %s: %s", clip(topic, TOPIC_CHARS), exc)

    @property
    def leads(self) -> bool:
        """Whether this instance holds the lease: it drives rollouts, deadlines, scans and chunk streams."""
        return self.lease is None or self.lease.is_leader()

    def tick(self) -> None:
        self.hellos.pump(self.clock())  # NOTE: every instance asks again for lost hellos, leading or not
        if not self.leads:
            self._published.clear()  # NOTE: whoever leads next publishes the whole outbox again
            return
        now = self.clock()
        try:
            with self._fenced():
                self._moved(self.fleet.rollouts.tick(now))
                self.publish_desired()
                self.publish_bench(now)
                if now - self._last_scan >= RETRAIN_SCAN_S:
                    self._last_scan = now
                    self.fleet.retraining.scan(now)
        except FleetError as exc:
            log.error("rollout step postponed: %s", exc)

    def _fenced(self):
        return contextlib.nullcontext() if self.lease is None else self.fleet.db.fenced(self.lease.fence)

    def publish_desired(self) -> None:
        for row in self.fleet.desired.all():
            if self._published.get(row.device_id) != row.sequence and self.transport.connected:
                self._publish(row)
                self._published[row.device_id] = row.sequence

    def publish_bench(self, now: float) -> None:
        """Sign and publish (retained) every live bench job row this process has not sent yet; after a restart
        that is all of them again, and devices ignore a bench sequence they already accepted."""
        if not self.transport.connected:
            return
        sent = []
        for row in self.fleet.bench.to_publish(now):
            if (row["job_id"], row["device_id"]) in self._bench_published:
                continue
            s = row["settings"]
            job = BenchJob(
                row["device_id"], row["job_id"], row["sequence"], int(row["created_at"]), int(row["deadline"]),
                self._artifact_ref(row["artifact_sha"]),
                self._artifact_ref(row["baseline_sha"]) if row["baseline_sha"] else None,
                s["duration_ms"], s["runs"], s["warmup"], s["threads"],
            )  # fmt: skip
            try:
                payload = encode(sign_bench_job(job, self.fleet.key))
            except ProtocolError as exc:  # NOTE: BenchSettings.check refuses these first; never stop the tick
                log.error("bench job %s for %s not sent: %s", row["job_id"], row["device_id"], exc.reason)
                continue
            self.transport.publish(bench_topic(row["device_id"]), payload, qos=1, retain=True)
            self._bench_published.add((row["job_id"], row["device_id"]))
            sent.append((row["job_id"], row["device_id"]))
        self.fleet.bench.mark_sent(sent, now)

    def _artifact_ref(self, sha: str) -> ArtifactRef:
        artifact = self.fleet.artifacts.get(sha)
        layout = ChunkLayout(sha, artifact["size"], self.chunk_size)
        return ArtifactRef(
            artifact["name"], artifact["version"], artifact["release"], sha, artifact["size"], self.chunk_size,
            layout.count, artifact["target"],
        )  # fmt: skip

    def _publish(self, row: DesiredRow) -> None:
        ref = self._artifact_ref(row.artifact_sha)
        issued = int(row.issued_at)
        floor = self.fleet.rollouts.floors.signed(row.device_id, ref.release, row.allow_rollback)
        state = DesiredState(
            row.device_id, ref, row.rollout_id, row.sequence, issued, issued + DESIRED_TTL_S, row.allow_rollback, floor
        )
        self.transport.publish(
            desired_topic(row.device_id), encode(sign_desired_state(state, self.fleet.key)), qos=1, retain=True
        )
        self.chunks.expect(row.artifact_sha, row.device_id)

    def _moved(self, moves: list[Moved]) -> None:
        _log_moves(moves)
        for listener in self.on_moves if moves else ():
            listener(moves)

    def _handle(self, topic: str, payload: bytes) -> None:
        try:
            where, message = decode_published(topic, payload)
        except ProtocolError as exc:
            self.fleet.events.reject(exc.code)
            self.rejections.rejected(exc.code, topic, exc.reason)
            return
        handler = self._handlers.get(where.kind)
        if handler is None:
            self.fleet.events.reject("unexpected_kind")
            return
        if where.kind == Kind.TELEMETRY:
            self._on_telemetry(where.device_id, message, self.clock(), payload)
            return
        handler(self, where.device_id, message, self.clock())

    def _on_hello(self, device_id: str, hello: Hello, now: float) -> None:
        # NOTE: decode_published already refused a hello whose device_id differs from its topic's
        self.fleet.devices.on_hello(hello, now)
        self.hellos.answered(device_id)
        self._published.pop(device_id, None)  # NOTE: (re)send its desired state on every hello
        # NOTE: hellos reach every instance (unshared, see fleet_subscriptions): the leader's outbox re-sends
        parked = self._parked.pop(device_id, None)
        if parked is not None:
            self._on_status(device_id, parked, now)

    def _park(self, device_id: str, status: Status) -> None:
        """Keep the status of a device not registered yet until its (retained) hello arrives: a fleet that
        subscribes after devices connected may get a status before the hello, whatever the broker's order."""
        self._parked.pop(device_id, None)
        self._parked[device_id] = status
        while len(self._parked) > PARKED_STATUSES:
            del self._parked[next(iter(self._parked))]

    def _on_status(self, device_id: str, status: Status, now: float) -> None:
        if not self.fleet.devices.on_status(device_id, status, now):
            self._unknown(device_id, now)
            self._park(device_id, status)
            return
        if status.state != "downloading":
            self.chunks.forget(device_id)
        if not status.online:
            return  # NOTE: a last will carries the slots from connect time: no evidence of the model running now
        active = status.slots.get(status.active) if status.active else None
        self._moved(self.fleet.rollouts.on_device_model(device_id, active.sha256 if active else None, now))

    def _on_event(self, device_id: str, event: Event, now: float) -> None:
        if not self._known(device_id):
            self._unknown(device_id, now)
            return
        failed = event.kind in ("rolled_back", "refused", "desired_rejected") and not event.ok
        if self.fleet.events.record(device_id, event) and failed and event.artifact:
            self._moved(self.fleet.rollouts.on_install_failed(device_id, event.artifact, event.reason, now))

    def _on_telemetry(self, device_id: str, telemetry: Telemetry, now: float, raw: bytes = b"") -> None:
        if not self._known(device_id):
            self._unknown(device_id, now)
            return
        self.fleet.telemetry.record(device_id, telemetry, now, raw)

    def _known(self, device_id: str) -> bool:
        """Whether the device said hello (registered devices are never removed: a yes is remembered, which
        saves the intake a database round trip per message)."""
        if device_id in self._registered:
            return True
        if self.fleet.devices.get(device_id) is None:
            return False
        self._registered.add(device_id)
        return True

    def _unknown(self, device_id: str, now: float) -> None:
        """A message from a device that has not said hello: counted, and its retained hello asked for again
        (rate-limited, retried from the tick and bounded in HelloRequests). Devices re-send a hello only when they
        reconnect, so a hello the broker or the full inbox dropped would otherwise leave the device unknown."""
        self.fleet.events.reject("unknown_device")
        self.hellos.want(device_id, now)

    def _on_chunk_request(self, device_id: str, request: ChunkRequest, now: float) -> None:
        if not self.leads:
            return  # NOTE: every instance receives chunk requests (fleet_subscriptions); the leader streams
        reason = self.chunks.request(device_id, request)
        if reason:
            self.fleet.events.reject(reason)

    def _on_bench_result(self, device_id: str, result: BenchResult, now: float) -> None:
        if not self._known(device_id):
            self._unknown(device_id, now)
            return
        if not self.fleet.bench.record(device_id, result, now):
            log.info("bench result of %s for job %s not applied (settled or repeated)", device_id, result.job_id)

    _handlers: ClassVar[dict[Kind, Callable]] = {
        Kind.HELLO: _on_hello,
        Kind.STATUS: _on_status,
        Kind.EVENT: _on_event,
        Kind.TELEMETRY: _on_telemetry,
        Kind.CHUNK_REQUEST: _on_chunk_request,
        Kind.BENCH_RESULT: _on_bench_result,
    }


def _log_moves(moves: list[Moved]) -> None:
    """One line per committed transition, e.g. `execution r-…/cam-01: installed → succeeded`."""
    for moved in moves:
        log.info("%s", moved)

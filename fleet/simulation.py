"""N simulated devices on one asyncio loop (one MQTT connection each, no thread per device) against a
real broker: for load tests, demos and rehearsing a rollout. Devices drop off at random during
transfers and come back, as a real fleet's do.

Each device is a SimulatedDevice (the real protocol); `_AioLink` gives it the Transport interface on
top of aiomqtt, queueing its publishes onto the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import resource
import signal
import time
from dataclasses import dataclass, field

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.fleet.simulated_device import Fault, SimulatedDevice, check_drift
from edgeml.transport import Handler, Will, parse_broker_url

__all__ = ["SimulationReport", "simulate"]

log = logging.getLogger(__name__)
QUIET_S = 5.0  # no new chunk for this long: ask again for what is missing (longer than a device's: one loop for all)


class _AioLink:
    """The Transport interface over one aiomqtt client; `run()` owns the connection and reconnects."""

    def __init__(self, url: str, client_id: str) -> None:
        self.url, self.client_id = parse_broker_url(url), client_id
        self.will: Will | None = None
        self.connected = False
        self.received_bytes = 0
        self._handlers: dict[str, Handler] = {}
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._client: aiomqtt.Client | None = None

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        new = topic_filter not in self._handlers
        self._handlers[topic_filter] = handler
        if new and self._client is not None and self.connected:
            self._outbox.put_nowait(("sub", topic_filter, None, qos, False))

    def unsubscribe(self, topic_filter: str) -> None:
        if self._handlers.pop(topic_filter, None) is not None and self._client is not None and self.connected:
            self._outbox.put_nowait(("unsub", topic_filter, None, 0, False))

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self._outbox.put_nowait(("pub", topic, payload, qos, retain))

    def connect(self, timeout: float = 10.0) -> None:  # the loop connects; see run()
        pass

    def close(self) -> None:
        self.connected = False

    async def run(self, on_connect, stop: asyncio.Event, drop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await self._session(on_connect, stop, drop)
            self.connected = False
            await asyncio.sleep(random.uniform(0.2, 1.0))

    async def _session(self, on_connect, stop: asyncio.Event, drop: asyncio.Event) -> None:
        will = aiomqtt.Will(self.will.topic, self.will.payload, self.will.qos, self.will.retain) if self.will else None
        async with aiomqtt.Client(
            self.url.host,
            self.url.port,
            identifier=self.client_id,
            will=will,
            username=self.url.username,
            password=self.url.password,
            keepalive=30,
            timeout=120,  # NOTE: hundreds of devices share one loop: a slow ack is no reason to drop the connection
            max_queued_incoming_messages=0,  # NOTE: unbounded: a full queue would drop acknowledged QoS 1 messages
        ) as client:
            self._client = client
            for topic_filter in self._handlers:
                await client.subscribe(topic_filter, qos=1)
            self.connected = True
            on_connect()
            tasks = [asyncio.create_task(self._send(client)), asyncio.create_task(self._receive(client))]
            waiter = asyncio.create_task(_first(stop, drop))
            await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
            for t in (*tasks, waiter):
                t.cancel()
            drop.clear()

    async def _send(self, client: aiomqtt.Client) -> None:
        in_flight: set[asyncio.Task] = set()
        while True:
            item = await self._outbox.get()
            kind, topic, payload, qos, retain = item
            try:
                if kind == "sub":
                    await client.subscribe(topic, qos=qos)
                elif kind == "unsub":
                    await client.unsubscribe(topic)
                else:  # NOTE: not awaited one by one: a device's requests and statuses must not queue behind acks
                    task = asyncio.create_task(client.publish(topic, payload, qos=qos, retain=retain))
                    in_flight.add(task)
                    task.add_done_callback(lambda t, item=item: self._published(t, item, in_flight))
            except aiomqtt.MqttError:
                self._requeue(item)  # NOTE: kept for the next connection, like paho's offline queue
                return

    def _published(self, task: asyncio.Task, item: tuple, in_flight: set[asyncio.Task]) -> None:
        in_flight.discard(task)
        if not task.cancelled() and isinstance(task.exception(), aiomqtt.MqttError):
            self._outbox.put_nowait(item)  # NOTE: sent again on the next connection

    def _requeue(self, item: tuple) -> None:
        rest = [item]
        while not self._outbox.empty():
            rest.append(self._outbox.get_nowait())
        for i in rest:
            self._outbox.put_nowait(i)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = bytes(message.payload)
            self.received_bytes += len(payload)
            for topic_filter, handler in list(self._handlers.items()):
                if message.topic.matches(topic_filter):
                    try:
                        handler(message.topic.value, payload)
                    except Exception:  # a device's bug is counted by its own logic; the loop goes on
                        log.exception("simulated device handler failed")


def _quiet_closed_sockets(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """paho schedules a writer callback for a socket that a dropped connection already closed (EBADF), and
    aiomqtt leaves an unawaited future holding the disconnect when the broker goes away: both expected here,
    where devices drop on purpose and reconnect; anything else is logged as usual."""
    exc = context.get("exception")
    if isinstance(exc, OSError) and exc.errno == errno.EBADF:
        log.debug("callback on a closed socket: %s", context.get("message"))
        return
    if isinstance(exc, aiomqtt.MqttError):
        log.debug("connection lost (the device reconnects): %s", exc)
        return
    loop.default_exception_handler(context)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()


async def _say_goodbye(devices: list[SimulatedDevice], links: list[_AioLink], timeout_s: float = 5.0) -> None:
    """Every connected device marks itself offline (retained) before the clean disconnect, which sends no last
    will; waits until those are sent (or `timeout_s`)."""
    for d, link in zip(devices, links, strict=True):
        if link.connected:
            d.goodbye()
    deadline = time.monotonic() + timeout_s
    while any(link.connected and not link._outbox.empty() for link in links) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # NOTE: the last publish taken off a queue is still being written


@dataclass
class SimulationReport:
    devices: int
    seconds: float = 0.0
    converged: int = 0
    corrupt_installs: int = 0
    received_bytes: int = 0
    disconnects: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False  # Ctrl-C (SIGINT) ended it early: the figures are those at that moment
    processes: int = 1
    baseline_rss_mib: float = 0.0  # the process(es) before any device existed (Python, imports)
    peak_rss_mib: float = 0.0  # at the end, summed over the processes

    @property
    def kib_per_device(self) -> float:
        """Memory one simulated device costs: peak RSS beyond the baseline, per device."""
        return (self.peak_rss_mib - self.baseline_rss_mib) * 1024 / max(self.devices, 1)


async def simulate(
    url: str,
    n: int,
    target: str,
    fleet_key: Ed25519PublicKey,
    *,
    until_sha: str | None = None,
    duration_s: float = 60.0,
    disconnect_rate: float = 0.0,  # share of devices that drop off once in the middle of a download
    latency_ms: float = 5.0,
    faults: dict[str, Fault] | None = None,
    drift: float = 0.0,  # share of inputs moved to the top reference bin, on every version without a drift fault
    telemetry_period_s: float = 10.0,
    prefix: str = "sim",
    seed: int = 0,
    first: int = 0,  # the first device's number (`{prefix}-{first:05d}`): processes split one fleet's ids
    sigint_stops: bool = False,  # Ctrl-C ends the run early with the report so far (the CLI's processes)
) -> SimulationReport:
    """Run `n` devices until every one runs `until_sha` (if given) or `duration_s` passes. Each reports input
    histograms over the reference bins of the artifact it installed, with a `drift` share moved to the top bin
    (a fault's `drift` overrides it for that version)."""
    check_drift(drift)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_closed_sockets)
    rng = random.Random(seed)
    stop, interrupted = asyncio.Event(), asyncio.Event()
    if sigint_stops:
        loop.add_signal_handler(signal.SIGINT, interrupted.set)  # NOTE: every Ctrl-C just stops: none loses the report
    baseline_rss = _rss_mib()
    devices, links, drops = [], [], []
    for i in range(first, first + n):
        link = _AioLink(url, f"{prefix}-{i:05d}")
        device = SimulatedDevice(link.client_id, target, link, fleet_key, faults, latency_ms, seed=seed + i)
        device.drift = drift
        link.will = device.will()
        link.subscribe(f"edgeml/v1/devices/{link.client_id}/desired", device.on_desired)
        link.subscribe(f"edgeml/v1/devices/{link.client_id}/bench", device.on_bench)
        devices.append(device)
        links.append(link)
        drops.append(asyncio.Event())
    tasks = [
        asyncio.create_task(link.run(d.announce, stop, drop))
        for link, d, drop in zip(links, devices, drops, strict=True)
    ]
    report = SimulationReport(n)
    start = time.monotonic()
    droppers = set(rng.sample(range(n), round(disconnect_rate * n)))  # each drops once, mid-download
    last_telemetry = start
    while time.monotonic() - start < duration_s and not interrupted.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(interrupted.wait(), 0.25)
        for i, d in enumerate(devices):
            if i in droppers and d.download and d.download.received and rng.random() < 0.25:
                droppers.discard(i)
                drops[i].set()
                report.disconnects += 1
            if links[i].connected:
                d.poll(quiet_s=QUIET_S)
        if time.monotonic() - last_telemetry >= telemetry_period_s:
            last_telemetry = time.monotonic()
            for link, d in zip(links, devices, strict=True):
                if link.connected:
                    d.emit_telemetry(calls=int(telemetry_period_s * 10))
        if until_sha and all(d.current and d.current.sha256 == until_sha for d in devices):
            break
    report.seconds = time.monotonic() - start
    report.interrupted = interrupted.is_set()
    # NOTE: let the last statuses and events reach the fleet before disconnecting
    await asyncio.sleep(0.5 if report.interrupted else 2.0)
    await _say_goodbye(devices, links)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    report.converged = sum(1 for d in devices if until_sha and d.current and d.current.sha256 == until_sha)
    report.corrupt_installs = sum(d.corrupt_installs for d in devices)
    report.received_bytes = sum(link.received_bytes for link in links)
    for d in devices:
        key = d.current.version if d.current else "none"
        report.versions[key] = report.versions.get(key, 0) + 1
    report.baseline_rss_mib = baseline_rss
    report.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if sigint_stops:
        loop.remove_signal_handler(signal.SIGINT)
    return report


def _rss_mib() -> float:
    """This process's resident memory now (Linux /proc; the peak so far elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

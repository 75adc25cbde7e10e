"""A broker the fleet starts for itself, for trying the whole loop on one machine: loopback only, stopped
with the fleet. Production points the fleet at Mosquitto, EMQX or HiveMQ instead.

Which broker: Mosquitto when its binary is installed (`mosquitto` on PATH, or /usr/sbin/mosquitto), run as
a child process with a generated config (the queue limits of `edgeml fleet acl --conf`) and stopped by its
own PID — the broker edgeml's tests and benchmarks measure. Without it, amqtt (pure Python, in a thread of
the fleet process). amqtt 0.12 iterates its subscription table across `await`s, so a client subscribing
while a message is being fanned out raised `RuntimeError: dictionary changed size during iteration` and
lost that message (hellos, under 50 concurrent connects); the table is replaced here by one whose iteration
is a snapshot. amqtt stays the fallback: for more than a few dozen devices install Mosquitto.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from edgeml.fleet.database import FleetError
from edgeml.fleet.mosquitto_config import BrokerLimits

__all__ = ["EmbeddedBroker", "find_mosquitto"]

log = logging.getLogger(__name__)


def find_mosquitto() -> str | None:
    """The Mosquitto binary, or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)


class EmbeddedBroker:
    """`kind`: "auto" (Mosquitto if installed, else amqtt), "mosquitto" or "amqtt"."""

    def __init__(self, port: int = 1883, kind: str = "auto") -> None:
        self.port = port
        self.url = f"mqtt://127.0.0.1:{port}"
        binary = find_mosquitto() if kind in ("auto", "mosquitto") else None
        if kind == "mosquitto" and binary is None:
            raise FleetError("the embedded broker was asked to be Mosquitto, which is not installed",
                             "apt-get install mosquitto (or brew install mosquitto), or use amqtt")  # fmt: skip
        self.kind = "mosquitto" if binary else "amqtt"
        self._impl = _MosquittoChild(port, binary) if binary else _Amqtt(port)

    def start(self, timeout: float = 10.0) -> None:
        # NOTE: the readiness checks connect to the port, so a broker already there would pass for ours.
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            pass
        else:
            raise FleetError(
                f"127.0.0.1:{self.port} is already in use (another MQTT broker?): no embedded broker started",
                f"use that broker with --broker mqtt://127.0.0.1:{self.port}, or choose a free port with --port",
            )
        self._impl.start(timeout)

    def stop(self) -> None:
        self._impl.stop()


class _MosquittoChild:
    def __init__(self, port: int, binary: str) -> None:
        self.port, self.binary = port, binary
        self.proc: subprocess.Popen | None = None
        self.folder: Path | None = None

    def start(self, timeout: float) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="edgeml-broker-"))
        conf = self.folder / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence false",
                 f"user {getpass.getuser()}", *BrokerLimits().lines()]  # fmt: skip
        conf.write_text("\n".join(lines) + "\n")
        log_path = self.folder / "mosquitto.log"
        with open(log_path, "ab") as out:
            self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=_die_with_parent)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise FleetError(
            f"the embedded broker (Mosquitto) could not listen on 127.0.0.1:{self.port}: {' '.join(tail)}",
            "free the port or choose another with --port",
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _die_with_parent() -> None:
    """In the child before exec: on Linux, SIGTERM it when the thread that started it dies (the main thread of
    `fleet serve` or the demo: so with its process, even by SIGKILL), so a killed fleet, demo or test run never
    leaves its broker listening. Elsewhere a no-op."""
    import sys

    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


class _SnapshotDict(dict):
    """A dict whose iteration is over a copy, so an `await` inside a loop over it cannot break the loop."""

    def __iter__(self):
        return iter(list(super().keys()))

    def keys(self):
        return list(super().keys())

    def values(self):
        return [list(v) if isinstance(v, list) else v for v in super().values()]

    def items(self):
        return [(k, list(v) if isinstance(v, list) else v) for k, v in super().items()]


class _Amqtt:
    def __init__(self, port: int) -> None:
        self.port = port
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edgeml-embedded-broker", daemon=True)

    def start(self, timeout: float) -> None:
        try:
            import amqtt.broker  # noqa: F401
        except ImportError as exc:
            raise FleetError(
                "the embedded broker needs Mosquitto or amqtt",
                "install Mosquitto (apt-get install mosquitto), or pip install 'edgeml[fleet]', or pass --broker",
            ) from exc
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise FleetError(
                f"the embedded broker could not listen on 127.0.0.1:{self.port}: {self._error}",
                "free the port or choose another with --port",
            )

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from amqtt.broker import Broker

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        broker = Broker({"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}}})
        broker._subscriptions = _SnapshotDict(broker._subscriptions)  # NOTE: see the module docstring
        try:
            await broker.start()
        except Exception as exc:  # amqtt raises its own BrokerError or OSError for a busy port
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await broker.shutdown()

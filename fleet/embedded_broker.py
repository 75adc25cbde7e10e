"""A small MQTT broker inside the fleet process (amqtt, asyncio, in its own thread), for trying the whole
loop on one machine with nothing else installed. Loopback only. Production points the fleet at
Mosquitto, EMQX or HiveMQ instead."""

from __future__ import annotations

import asyncio
import logging
import threading

from edgeml.fleet.database import FleetError

__all__ = ["EmbeddedBroker"]


class EmbeddedBroker:
    def __init__(self, port: int = 1883) -> None:
        self.port = port
        self.url = f"mqtt://127.0.0.1:{port}"
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edgeml-embedded-broker", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        try:
            import amqtt.broker  # noqa: F401
        except ImportError as exc:
            raise FleetError(
                "the embedded broker needs amqtt", "pip install 'edgeml[fleet]', or pass --broker"
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
        try:
            await broker.start()
        except Exception as exc:  # amqtt raises its own BrokerError or OSError for a busy port
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await broker.shutdown()

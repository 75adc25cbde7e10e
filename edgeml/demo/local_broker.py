"""The demo's own broker on a free loopback port: Mosquitto where it is installed (PITFALLS: amqtt loses hellos
under concurrent connects), else the embedded pure-Python one. Started and stopped by the demo."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from edgeml.errors import EdgemlError

__all__ = ["LocalBroker"]


class LocalBroker:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.url = f"mqtt://127.0.0.1:{port}"
        self.kind = "mosquitto" if _mosquitto() else "amqtt (embedded)"
        self._proc: subprocess.Popen | None = None
        self._embedded = None

    def start(self) -> None:
        binary = _mosquitto()
        if binary is None:
            from edgeml.fleet.embedded_broker import EmbeddedBroker

            self._embedded = EmbeddedBroker(self.port)
            self._embedded.start()
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        with open(self.folder / "mosquitto.log", "ab") as log:
            self._proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EdgemlError(f"mosquitto did not start on port {self.port}", f"see {self.folder / 'mosquitto.log'}")

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None


def _mosquitto() -> str | None:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    return found

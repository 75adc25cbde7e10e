"""The agent's one persisted state → the retained `status` (online, lifecycle state, slots, accepted
sequence) and the `hello` sent on every connect (target, runtimes, free storage, agent version, serving model).

Slots are named by the sha256 of the artifact file the fleet sent when this agent installed them (the
digest the fleet knows), else by the manifest digest.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Collection

import edgeml
from edgeml.device_agent.update.installer import Installer
from edgeml.errors import EdgemlError
from edgeml.protocol import Hello, ModelRef, Status, encode, hello_topic, status_topic
from edgeml.transport import Transport

__all__ = ["StatusReporter"]

log = logging.getLogger(__name__)


class StatusReporter:
    def __init__(
        self,
        device_id: str,
        target: str,
        runtimes: Collection[str],
        installer: Installer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device_id = device_id
        self.target = target
        self.runtimes = tuple(runtimes)
        self.installer = installer
        self.clock = clock

    def status(self, online: bool = True) -> Status:
        state = self.installer.state()
        slots = {
            name: None if rec is None else ModelRef(rec.name, rec.version, rec.release, rec.sha256)
            for name, rec in state.slots.items()
        }
        return Status(state.lifecycle.value, online, int(self.clock()), slots, state.active,
                      state.desired_sequence or None)  # fmt: skip

    def hello(self) -> Hello:
        status = self.status()
        current = status.slots.get(status.active) if status.active else None
        return Hello(self.device_id, self.target, edgeml.__version__, self._free_storage(), self._runtime_versions(),
                     current)  # fmt: skip

    def publish(self, transport: Transport, with_hello: bool = False) -> None:
        """Publish the status (retained), and the hello first when asked; skipped while offline."""
        if not transport.connected:
            return
        try:
            if with_hello:
                # NOTE: retained, so a fleet that subscribes after this connect still registers the device
                transport.publish(hello_topic(self.device_id), encode(self.hello()), qos=1, retain=True)
            transport.publish(status_topic(self.device_id), encode(self.status()), qos=1, retain=True)
        except EdgemlError as exc:
            log.warning("status not published: %s", exc.message)

    def _free_storage(self) -> int:
        try:
            return shutil.disk_usage(self.installer.state_dir).free
        except OSError:
            return 0

    def _runtime_versions(self) -> dict[str, str]:
        from edgeml.runtimes import runtime_version  # NOTE: only once a connection needs a hello

        found = {runtime: runtime_version(runtime) for runtime in self.runtimes[:16]}
        return {runtime: version for runtime, version in found.items() if version is not None}

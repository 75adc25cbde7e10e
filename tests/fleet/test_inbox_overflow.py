"""A full intake inbox refuses messages without touching the database on the receiving (MQTT network) thread:
while the worker's batch holds the database, the network thread must go on reading and sending (chunk
streams go out through it). The worker stores how many were refused as the `inbox_full` rejection count."""

from __future__ import annotations

import queue
import threading

from edgeml.fleet import FleetService
from edgeml.transport.memory_transport import MemoryBroker, MemoryTransport


def test_a_full_inbox_counts_refusals_without_waiting_for_the_database(fleet):
    service = FleetService(fleet, MemoryTransport(MemoryBroker(), "fleet"))
    service._inbox = queue.Queue(maxsize=2)
    held, release = threading.Event(), threading.Event()

    def hold_the_database() -> None:  # NOTE: what the worker does for up to a batch's time
        with fleet.db.transaction():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_database)
    holder.start()
    assert held.wait(30)
    receiver = threading.Thread(target=lambda: [service._receive("edgeml/v1/devices/d/telemetry", b"{}")
                                                for _ in range(5)])  # fmt: skip
    receiver.start()
    receiver.join(timeout=20)
    refused_while_held = not receiver.is_alive()
    release.set()
    holder.join()
    receiver.join()
    assert refused_while_held, "the receiving thread waited for the database"
    assert service.store_dropped() == 3 and service.store_dropped() == 0
    assert fleet.events.rejected() == {"inbox_full": 3}

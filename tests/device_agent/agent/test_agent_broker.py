"""The agent against a real Mosquitto: a full update, a broker restart in the middle of a download, a damaged
chunk, telemetry whose sketch matches the exact p99, spooling through an outage, serving during an install,
and a broker that is down when the agent starts."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgeml.protocol import Kind

pytestmark = pytest.mark.broker

X = np.zeros((1, 1, 8, 8), np.float32)


def test_a_full_update_over_mqtt(broker, mqtt_fleet, make_config, running_agents, digits_tar, wait_until):
    fleet = mqtt_fleet()
    agent = running_agents.start(make_config(broker.url))
    assert fleet.next(Kind.HELLO).device_id == "cam-042"
    ref = fleet.add(digits_tar)
    fleet.desire(ref)
    kinds = [fleet.next(Kind.EVENT).kind for _ in range(5)]
    assert kinds == ["download_started", "downloaded", "verified", "installed", "committed"]
    status = fleet.next(Kind.STATUS, where=lambda s: s.active == "a")
    assert status.slots["a"].sha256 == ref.sha256 and status.online
    wait_until(lambda: agent.serving is not None)
    assert agent.predict({"input": X})["logits"].shape == (1, 10)
    agent.stop()
    goodbye = fleet.next(Kind.STATUS, where=lambda s: not s.online)  # a clean stop marks the device offline
    assert goodbye.active == "a" and goodbye.slots["a"].sha256 == ref.sha256


def test_a_broker_restart_mid_download_resumes_to_completion(
    broker, mqtt_fleet, make_config, running_agents, digits_tar, wait_until
):
    fleet = mqtt_fleet()
    agent = running_agents.start(make_config(broker.url, download={"window": 8}))
    fleet.next(Kind.HELLO)
    ref = fleet.add(digits_tar, chunk_size=1024)
    fleet.damage = lambda index, message: message if index < 40 else None  # the first 40, then silence
    fleet.desire(ref)
    wait_until(lambda: (agent.worker.progress() or {}).get("received", 0) >= 40)
    broker.stop()
    wait_until(lambda: not agent.transport.connected)
    fleet.damage = None
    broker.start()  # no persistence: the retained desired state is gone; the agent carries on from its own record
    fleet.add(digits_tar, chunk_size=1024)
    committed = fleet.event("committed", timeout=20)
    assert committed.artifact == ref.sha256
    assert agent.worker.chunks_dropped == 0 and sorted(set(fleet.served)) == list(range(ref.chunk_count))


def test_a_damaged_chunk_is_dropped_and_fetched_again(broker, mqtt_fleet, make_config, running_agents, digits_tar):
    fleet = mqtt_fleet()
    running_agents.start(make_config(broker.url))
    fleet.next(Kind.HELLO)
    damaged = []

    def flip_chunk_3_once(index, message):
        if index == 3 and not damaged:
            damaged.append(index)
            return message[:-1] + bytes([message[-1] ^ 0xFF])
        return message

    fleet.damage = flip_chunk_3_once
    ref = fleet.add(digits_tar)
    fleet.desire(ref)
    rejected = fleet.event("chunk_rejected")
    assert rejected.reason.startswith("[bad_checksum]") and rejected.artifact == ref.sha256
    assert "1 damaged chunk(s) were dropped and fetched again" in fleet.event("downloaded").reason
    assert fleet.event("committed").ok and fleet.served.count(3) == 2


def test_telemetry_sketch_p99_matches_the_exact_p99(
    broker, mqtt_fleet, make_config, running_agents, preinstall, digits_artifact
):
    fleet = mqtt_fleet()
    config = make_config(broker.url)
    preinstall(config, digits_artifact)
    agent = running_agents.start(config)
    fleet.next(Kind.HELLO)
    latencies = sorted(agent.predict({"input": X}).latency_ms for _ in range(500))
    agent.send_telemetry()
    batch = fleet.next(Kind.TELEMETRY)
    exact = latencies[int(0.99 * (len(latencies) - 1))]
    assert batch.calls == 500 and batch.latency_ms.count == 500
    assert abs(batch.latency_ms.quantile(0.99) - exact) <= batch.latency_ms.alpha * exact
    assert batch.model.version == "1.2.3"


def test_telemetry_is_spooled_through_an_outage_oldest_dropped(
    broker, mqtt_fleet, make_config, running_agents, preinstall, digits_artifact, wait_until
):
    fleet = mqtt_fleet()
    config = make_config(broker.url, telemetry={"spool_max_bytes": 500})  # two one-call batches (~215 B each)
    preinstall(config, digits_artifact)
    agent = running_agents.start(config)
    fleet.next(Kind.HELLO)
    fleet.transport.close()
    broker.stop()
    wait_until(lambda: not agent.transport.connected)
    for _ in range(4):
        agent.predict({"input": X})
        agent.send_telemetry()
    assert len(agent.spool) == 2 and agent.spool.dropped == 2
    assert all(r.payload[:1] == b"x" for r in agent.spool.records())  # spooled as sent: compressed
    broker.start()
    # NOTE: the agent retries 1 s, then 3 s after the outage; the new listener is in well before that
    after = mqtt_fleet("fleet-after")
    assert [after.next(Kind.TELEMETRY, timeout=15).seq for _ in range(2)] == [3, 4]
    wait_until(lambda: len(agent.spool) == 0)


def test_predict_keeps_serving_during_an_install(
    broker, mqtt_fleet, make_config, running_agents, preinstall, digits_artifact, newer_tar, wait_until
):
    fleet = mqtt_fleet()
    config = make_config(broker.url)
    preinstall(config, digits_artifact)
    agent = running_agents.start(config)
    fleet.next(Kind.HELLO)
    served, failures, done = [], [], threading.Event()

    def hammer():
        while not done.is_set():
            try:
                served.append(agent.predict({"input": X}) is not None and agent.serving.model.version)
            except Exception as exc:
                failures.append(exc)

    thread = threading.Thread(target=hammer)
    thread.start()
    fleet.desire(fleet.add(newer_tar))
    fleet.event("committed")
    wait_until(lambda: served and served[-1] == "1.3.0")
    done.set()
    thread.join()
    assert not failures and served[0] == "1.2.3"


def test_broker_down_at_start_the_agent_serves_and_connects_later(
    broker, make_config, running_agents, preinstall, digits_artifact, wait_until, mqtt_fleet
):
    config = make_config(broker.url)
    preinstall(config, digits_artifact)
    broker.stop()
    started = time.monotonic()
    agent = running_agents.start(config)
    assert time.monotonic() - started < 1.0  # start() does not wait for the broker
    assert agent.predict({"input": X})["logits"].shape == (1, 10)
    broker.start()
    wait_until(lambda: agent.transport.connected, timeout=12)
    status = mqtt_fleet().next(Kind.STATUS)  # retained, so a late listener still gets it
    assert status.online and status.version == "1.2.3"

"""The agent's bench jobs against a real Mosquitto: a signed job is fetched, verified and timed from a scratch
folder and answered with a result; the same job again changes nothing; replayed, foreign-key, unsigned,
misaddressed and expired jobs are refused with a `bench_rejected` event and never run; the served model and
its slots are untouched."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgeml.artifact import create_keypair, load_private_key
from edgeml.protocol import BenchJob, Kind, bench_topic, encode, sign_bench_job

pytestmark = pytest.mark.broker
X = np.zeros((1, 1, 8, 8), np.float32)


def _job(ref, sequence, device="cam-042", deadline_s=120, runs=40):
    now = int(time.time())
    return BenchJob(device, f"job-{sequence}", sequence, now, now + deadline_s, ref, None, 0, runs, 5, 1)


def _expired(ref, sequence):
    then = int(time.time()) - 600
    return BenchJob("cam-042", f"job-{sequence}", sequence, then, then + 60, ref, None, 0, 40, 5, 1)


def test_a_signed_job_is_measured_and_refusals_change_nothing(
    broker, mqtt_fleet, make_config, running_agents, preinstall, digits_tar, newer_tar, wait_until, tmp_path
):
    config = make_config(broker.url)
    preinstall(config, digits_tar)
    fleet = mqtt_fleet()
    agent = running_agents.start(config)
    fleet.next(Kind.HELLO)
    wait_until(lambda: agent.serving is not None)
    serving, slots = agent.serving.model.sha256, agent.installer.state().slots
    ref = fleet.add(newer_tar)
    topic = bench_topic("cam-042")
    first = encode(sign_bench_job(_job(ref, 5), fleet.key))
    fleet.transport.publish(topic, first)
    result = fleet.next(Kind.BENCH_RESULT, timeout=30)
    assert result.ok and result.job_id == "job-5", result.reason
    stats = result.result["latency"]["artifact"]
    assert stats["n"] == 40 and stats["p50_ms"] <= stats["p99_ms"]
    assert result.result["artifact"]["version"] == "1.3.0"
    assert result.result["self_test"]["passed"] and result.result["self_test"]["outputs"]["logits"]["cosine"] > 0.99
    assert agent.predict({"input": X})["logits"].shape == (1, 10)
    assert agent.serving.model.sha256 == serving and agent.installer.state().slots == slots

    foreign = load_private_key(create_keypair(tmp_path / "foreign")[0])
    unsigned = encode(sign_bench_job(_job(ref, 9), fleet.key)).replace(b'"signature"', b'"unsigned"')
    fleet.transport.publish(topic, first)  # a duplicate: ignored
    for payload, code in [
        (encode(sign_bench_job(_job(ref, 4), fleet.key)), "stale"),
        (encode(sign_bench_job(_job(ref, 6), foreign)), "wrong_key"),
        (unsigned, "unsigned"),
        (encode(sign_bench_job(_job(ref, 7, device="cam-999"), fleet.key)), "wrong_device"),
        (encode(sign_bench_job(_expired(ref, 8), fleet.key)), "expired"),
    ]:
        fleet.transport.publish(topic, payload)
        event = fleet.event("bench_rejected", timeout=10)
        assert event.reason.startswith(f"[{code}]"), event.reason
    time.sleep(0.5)
    assert fleet.messages[Kind.BENCH_RESULT].empty()
    assert agent.bench.completed == 1
    assert agent.serving.model.sha256 == serving and agent.installer.state().slots == slots
    assert not any((tmp_path / "agent" / "bench").iterdir())

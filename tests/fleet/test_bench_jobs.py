"""Bench jobs through the fleet and simulated devices on the in-memory broker (SQLite and PostgreSQL): every
device answers with percentiles and a ratio against the baseline measured in the same job; a device offline
is settled as offline, never waited for; replayed, foreign, unsigned and misaddressed jobs are refused."""

from __future__ import annotations

import time

import pytest

from edgeml.artifact import create_keypair, load_private_key
from edgeml.fleet.bench_jobs import FINAL_STATES, BenchSettings
from edgeml.fleet.database import FleetError
from edgeml.protocol import bench_topic, decode, encode, sign_bench_job


def _answer(service, devices, clock, job_id, rounds=40):
    ids = {d.device_id for d in devices}
    for _ in range(rounds):
        service.tick()
        service.pump()
        for d in devices:
            d.poll()
        service.pump()
        status = service.fleet.bench.status(job_id)
        if all(r["state"] in FINAL_STATES for r in status["results"] if r["device_id"] in ids):
            return status
        time.sleep(0.05)
    raise AssertionError(f"bench job did not settle: {service.fleet.bench.status(job_id)}")


def test_bench_job_answered_by_every_device_with_the_baseline_beside(world, releases):
    service, devices, clock = world
    fleet = service.fleet
    fleet.artifacts.publish(releases["1.2.3"], clock.now)
    fleet.artifacts.publish(releases["1.3.0"], clock.now)
    devices[9].goodbye()  # one device goes offline
    devices[9].transport.vanish()
    service.pump()
    job = fleet.bench.create("digits@1.3.0", "all", BenchSettings(duration_ms=100, deadline_s=60), clock.now,
                             baseline="digits@1.2.3")  # fmt: skip
    status = _answer(service, devices[:9], clock, job["id"])
    done = [r for r in status["results"] if r["state"] == "done"]
    assert len(done) == 9
    for r in done:
        result = r["result"]
        assert {"artifact", "baseline"} <= set(result["latency"])
        a = result["latency"]["artifact"]
        assert a["p50_ms"] <= a["p90_ms"] <= a["p99_ms"]
        assert result["ratio"] > 1.0  # 1.3.0 carries a +40 ms fault on these devices
        assert result["latency_sketch_ms"]["artifact"]["count"] == a["n"]
    settled = fleet.bench.settle(job["id"], clock.now, force=True)
    gone = {r["device_id"]: r["state"] for r in settled["results"]}["cam-09"]
    assert gone == "offline"


def test_bench_deadline_settles_every_unanswered_device(fleet, releases):
    fleet.artifacts.publish(releases["1.2.3"], 1000.0)
    from edgeml.protocol import Hello, Status

    fleet.devices.on_hello(Hello("d-1", "cpu-ort", "t", 1, {}, None), 1000.0)
    fleet.devices.on_status("d-1", Status("idle", True, 1000, {}, None, None), 1000.0)
    job = fleet.bench.create("digits@1.2.3", "all", BenchSettings(deadline_s=30), 1000.0)
    assert fleet.bench.settle(job["id"], 1010.0)["results"][0]["state"] == "pending"
    assert fleet.bench.settle(job["id"], 1031.0)["results"][0]["state"] == "timed_out"


def test_replayed_foreign_unsigned_and_misaddressed_jobs_are_refused(world, releases, tmp_path):
    service, devices, clock = world
    fleet = service.fleet
    fleet.artifacts.publish(releases["1.2.3"], clock.now)
    job = fleet.bench.create("digits@1.2.3", "id=cam-00", BenchSettings(duration_ms=50), clock.now)
    service.tick()
    device = devices[0]
    topic = bench_topic("cam-00")
    first = service.transport.broker.retained[topic]
    _answer(service, [device], clock, job["id"])
    answered = device.bench_answered
    device.on_bench(topic, first)  # the same job again: a duplicate, ignored
    signed = decode("bench_job", first)
    older = sign_bench_job(_with(signed.job, sequence=signed.job.sequence - 1 or 1), fleet.key)
    device.bench_sequence = max(device.bench_sequence, 2)
    device.on_bench(topic, encode(older))
    foreign_key = load_private_key(create_keypair(tmp_path / "other")[0])
    device.on_bench(topic, encode(sign_bench_job(_with(signed.job, sequence=99), foreign_key)))
    unsigned = encode(sign_bench_job(_with(signed.job, sequence=100), fleet.key)).replace(b'"signature"', b'"x"')
    device.on_bench(topic, unsigned)
    device.on_bench(topic, encode(sign_bench_job(_with(signed.job, sequence=101, device_id="cam-01"), fleet.key)))
    for _ in range(3):
        time.sleep(0.06)
        device.poll()
    assert device.bench_answered == answered
    assert device.rejected[-4:] == ["stale", "wrong_key", "unsigned", "wrong_device"]


def _with(job, **changes):
    from dataclasses import replace

    return replace(job, **changes)


def test_settings_a_device_would_refuse_are_refused_at_creation(fleet, releases):
    fleet.artifacts.publish(releases["1.2.3"], 1000.0)
    with pytest.raises(FleetError, match="threads 0"):
        fleet.bench.create("digits@1.2.3", "all", BenchSettings(threads=0), 1000.0)

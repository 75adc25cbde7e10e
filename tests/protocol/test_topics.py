"""The topic tree: builders and parser agree, everything outside the tree is rejected, and the device ACL
confines a device to its own topics."""

from __future__ import annotations

import pytest

from edgeml.protocol import (
    Kind,
    ProtocolError,
    Topic,
    artifact_chunks_topic,
    check_device_id,
    chunk_request_topic,
    desired_topic,
    device_acl,
    device_subscriptions,
    events_topic,
    fleet_subscriptions,
    hello_topic,
    parse_topic,
    status_topic,
    telemetry_topic,
)

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("build", "kind", "leaf"),
    [(hello_topic, Kind.HELLO, "hello"), (status_topic, Kind.STATUS, "status"), (events_topic, Kind.EVENT, "events"),
     (telemetry_topic, Kind.TELEMETRY, "telemetry"), (chunk_request_topic, Kind.CHUNK_REQUEST, "chunks/req"),
     (desired_topic, Kind.DESIRED_STATE, "desired")],
)  # fmt: skip
def test_device_topics_round_trip(build, kind, leaf):
    topic = build("dev-1")
    assert topic == f"edgeml/v1/devices/dev-1/{leaf}"
    assert parse_topic(topic) == Topic(kind, device_id="dev-1")


def test_artifact_chunk_topic_round_trips():
    assert parse_topic(artifact_chunks_topic(SHA)) == Topic(Kind.CHUNK, artifact=SHA)


@pytest.mark.parametrize(
    "topic",
    ["edgeml/v2/devices/d/hello", "edgeml/v1/devices/d/hello/x", "edgeml/v1/devices/d", "edgeml/v1/devices//hello",
     "edgeml/v1/devices/d/chunks", "edgeml/v1/artifacts/xyz/chunks", f"edgeml/v1/artifacts/{SHA}/chunks/x",
     "edgeml/v1/devices/+/hello", "edgeml/v1/devices/#", "other/topic", "", "edgeml/v1/devices/$SYS/hello"],
)  # fmt: skip
def test_anything_else_is_rejected(topic):
    with pytest.raises(ProtocolError) as err:
        parse_topic(topic)
    assert err.value.code in ("unknown_topic", "bad_device_id")


@pytest.mark.parametrize("device_id", ["", "a/b", "a+b", "a#", "$sys", "-lead", ".", "..", "a b", "é", "x" * 65])
def test_unsafe_device_ids_are_refused(device_id):
    with pytest.raises(ProtocolError, match="device id") as err:
        check_device_id(device_id)
    assert err.value.hint


@pytest.mark.parametrize("device_id", ["a", "sensor-01", "Cam_7.rev2", "0" * 64])
def test_safe_device_ids_pass(device_id):
    assert check_device_id(device_id) == device_id


def test_subscriptions_and_acl():
    assert device_subscriptions("d1") == [
        "edgeml/v1/devices/d1/desired", "edgeml/v1/devices/d1/bench", "edgeml/v1/artifacts/+/chunks",
    ]  # fmt: skip
    assert fleet_subscriptions()[0] == "edgeml/v1/devices/+/hello"
    shared = fleet_subscriptions("fleet")
    assert shared[0] == "edgeml/v1/devices/+/hello", "retained hellos reach plain subscriptions only"
    assert all(s.startswith("$share/fleet/edgeml/v1/devices/+/") for s in shared[1:])
    every = fleet_subscriptions("fleet", every_instance=(Kind.STATUS,))
    assert "edgeml/v1/devices/+/status" in every and "$share/fleet/edgeml/v1/devices/+/status" not in every
    acl = device_acl("d1")
    writes = {t for access, t in acl if access == "write"}
    assert all(t.startswith("edgeml/v1/devices/d1/") for t in writes)
    assert "edgeml/v1/devices/d1/desired" not in writes  # only the fleet publishes desired state
    assert "edgeml/v1/devices/d1/bench" not in writes  # ... and bench jobs
    assert {t for access, t in acl if access == "read"} == set(device_subscriptions("d1"))

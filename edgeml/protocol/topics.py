"""The edgeml/v1 topic tree: (kind, device id or artifact digest) ↔ MQTT topic, and nothing else.

    edgeml/v1/devices/{id}/hello | status | events | telemetry | chunks/req    device → fleet
    edgeml/v1/devices/{id}/desired                                              fleet → device (retained)
    edgeml/v1/devices/{id}/bench · bench/result                                 bench job (signed) · its answer
    edgeml/v1/artifacts/{sha256}/chunks                                         fleet → devices

`parse_topic` accepts exactly these shapes and raises ProtocolError('unknown_topic' | 'bad_device_id')
for anything else, so a receiver never routes on a topic it did not validate. Device ids are
[A-Za-z0-9][A-Za-z0-9._-]{0,63}: no MQTT wildcard ('+', '#'), no level separator ('/'), no '$'.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.protocol.fields import ID_PATTERN, SHA256_PATTERN
from edgeml.protocol.kind import Kind
from edgeml.protocol.protocol_error import ProtocolError

__all__ = [
    "PREFIX",
    "Topic",
    "artifact_chunks_topic",
    "bench_result_topic",
    "bench_topic",
    "check_device_id",
    "chunk_request_topic",
    "desired_topic",
    "device_acl",
    "device_subscriptions",
    "device_topic",
    "events_topic",
    "fleet_subscriptions",
    "hello_topic",
    "parse_topic",
    "status_topic",
    "telemetry_topic",
]

PREFIX = "edgeml/v1"

# the leaf under devices/{id}/ for each device-level kind (one table: builders and parser both read it)
DEVICE_LEAVES: dict[Kind, str] = {
    Kind.HELLO: "hello",
    Kind.STATUS: "status",
    Kind.EVENT: "events",
    Kind.TELEMETRY: "telemetry",
    Kind.CHUNK_REQUEST: "chunks/req",
    Kind.DESIRED_STATE: "desired",
    Kind.BENCH_JOB: "bench",
    Kind.BENCH_RESULT: "bench/result",
}
_KIND_OF_LEAF = {leaf: kind for kind, leaf in DEVICE_LEAVES.items()}
DEVICE_PUBLISHES = (Kind.HELLO, Kind.STATUS, Kind.EVENT, Kind.TELEMETRY, Kind.CHUNK_REQUEST, Kind.BENCH_RESULT)


@dataclass(frozen=True)
class Topic:
    """A parsed topic: its kind and the device id (device topics) or artifact digest (chunk streams)."""

    kind: Kind
    device_id: str | None = None
    artifact: str | None = None


def check_device_id(device_id: str) -> str:
    """Return `device_id` if it is safe in a topic, else raise ProtocolError('bad_device_id')."""
    if not isinstance(device_id, str) or not ID_PATTERN.fullmatch(device_id):
        raise ProtocolError(
            "bad_device_id",
            f"device id {device_id!r} is not 1–64 characters of [A-Za-z0-9._-] starting with a letter or digit",
            "choose an id without '/', '+', '#', '$' or spaces (a serial number or MAC without colons works)",
        )
    return device_id


def device_topic(kind: Kind, device_id: str) -> str:
    if kind not in DEVICE_LEAVES:
        raise ValueError(f"{kind} is not a device-level topic kind")
    return f"{PREFIX}/devices/{check_device_id(device_id)}/{DEVICE_LEAVES[kind]}"


def hello_topic(device_id: str) -> str:
    return device_topic(Kind.HELLO, device_id)


def status_topic(device_id: str) -> str:
    return device_topic(Kind.STATUS, device_id)


def events_topic(device_id: str) -> str:
    return device_topic(Kind.EVENT, device_id)


def telemetry_topic(device_id: str) -> str:
    return device_topic(Kind.TELEMETRY, device_id)


def chunk_request_topic(device_id: str) -> str:
    return device_topic(Kind.CHUNK_REQUEST, device_id)


def desired_topic(device_id: str) -> str:
    return device_topic(Kind.DESIRED_STATE, device_id)


def bench_topic(device_id: str) -> str:
    return device_topic(Kind.BENCH_JOB, device_id)


def bench_result_topic(device_id: str) -> str:
    return device_topic(Kind.BENCH_RESULT, device_id)


def artifact_chunks_topic(sha256: str) -> str:
    if not isinstance(sha256, str) or not SHA256_PATTERN.fullmatch(sha256):
        raise ProtocolError("bad_digest", f"artifact digest {sha256!r} is not 64 lowercase hex digits")
    return f"{PREFIX}/artifacts/{sha256}/chunks"


def parse_topic(topic: str) -> Topic:
    """MQTT topic → Topic; ProtocolError for any topic outside the edgeml/v1 tree."""
    if not isinstance(topic, str) or not topic.startswith(PREFIX + "/"):
        raise ProtocolError("unknown_topic", f"topic {topic!r} is not under {PREFIX}/")
    parts = topic[len(PREFIX) + 1 :].split("/")
    if len(parts) >= 3 and parts[0] == "devices" and "/".join(parts[2:]) in _KIND_OF_LEAF:
        return Topic(_KIND_OF_LEAF["/".join(parts[2:])], device_id=check_device_id(parts[1]))
    if len(parts) == 3 and parts[0] == "artifacts" and parts[2] == "chunks":
        return Topic(Kind.CHUNK, artifact=_checked_digest(parts[1], topic))
    raise ProtocolError("unknown_topic", f"topic {topic!r} is not one of the edgeml/v1 topics")


def device_subscriptions(device_id: str) -> list[str]:
    """What a device may read (its ACL): its own desired state and the artifact chunk streams. It subscribes
    to its desired state always and to one chunk stream only while it fetches that artifact."""
    return [desired_topic(device_id), bench_topic(device_id), f"{PREFIX}/artifacts/+/chunks"]


def fleet_subscriptions(share_group: str | None = None, every_instance: tuple[Kind, ...] = ()) -> list[str]:
    """What the fleet service subscribes to; with `share_group`, MQTT 5 shared subscriptions that spread
    the intake over every instance in the group, but for the kinds in `every_instance`, which every
    instance receives (chunk requests: only the instance holding the lease serves them)."""
    filters = {kind: f"{PREFIX}/devices/+/{DEVICE_LEAVES[kind]}" for kind in DEVICE_PUBLISHES}
    if share_group is None:
        return list(filters.values())
    group = check_device_id(share_group)
    # NOTE: hello stays unshared: brokers send retained messages only to plain subscriptions, and a retained
    # hello is how a device that connected before the fleet subscribed gets registered (every instance does)
    return [
        f if kind in every_instance or f.endswith("/hello") else f"$share/{group}/{f}" for kind, f in filters.items()
    ]


def device_acl(device_id: str) -> list[tuple[str, str]]:
    """(access, topic) pairs, Mosquitto acl_file words: a device writes its own device topics (never its
    desired state) and reads its own desired state and the artifact chunk streams. Nothing else."""
    writes = [("write", device_topic(kind, device_id)) for kind in DEVICE_PUBLISHES]
    return [*writes, *(("read", t) for t in device_subscriptions(device_id))]


def _checked_digest(digest: str, topic: str) -> str:
    if not SHA256_PATTERN.fullmatch(digest):
        raise ProtocolError("unknown_topic", f"topic {topic!r}: {digest!r} is not a sha256 digest")
    return digest

"""The broker config `edgeml fleet acl` generates, on a real Mosquitto: passwords hashed here are accepted,
and a device cannot borrow another's identity (connecting as `dev-a` with client id `dev-b` no longer
kicks the real `dev-b` off the broker)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest

from edgeml.fleet.acl import mosquitto_acl
from edgeml.fleet.mosquitto_config import BrokerLimits, mosquitto_conf
from edgeml.fleet.mosquitto_passwords import ensure_credentials, hash_password, password_file, verify_password
from edgeml.protocol import desired_topic
from edgeml.transport.mqtt_transport import MqttTransport

pytestmark = pytest.mark.broker


def locked_broker(broker, tmp_path, bind_ids: bool = True):
    """Restart the `broker` fixture's Mosquitto with the generated acl, password file and config."""
    (tmp_path / "acl").write_text(mosquitto_acl(["dev-a", "dev-b"]))
    creds, _ = ensure_credentials(tmp_path / "credentials", ["edgeml-fleet", "dev-a", "dev-b"])
    (tmp_path / "passwords").write_text(password_file(creds))
    conf = mosquitto_conf(tmp_path / "acl", tmp_path / "passwords", f"127.0.0.1:{broker.port}")
    if not bind_ids:
        conf = conf.replace("use_username_as_clientid true\n", "")
    broker.conf.write_text(conf + "persistence false\nuser root\n")
    broker.stop()
    broker.start()
    return creds, broker.url.replace("mqtt://", "mqtt://{}:{}@")


class Watched:
    """A client whose disconnects are counted."""

    def __init__(self, url: str, client_id: str) -> None:
        self.transport = MqttTransport(url, client_id)
        self.drops = 0
        self.connects = 0
        self.got: list[bytes] = []
        inner = self.transport._client.on_disconnect
        self.transport._client.on_disconnect = lambda *a: (setattr(self, "drops", self.drops + 1), inner(*a))
        self.transport.on_connect = lambda: setattr(self, "connects", self.connects + 1)


def test_generated_password_file_and_config_are_accepted(tmp_path, broker):
    creds, url = locked_broker(broker, tmp_path)
    fleet = MqttTransport(url.format("edgeml-fleet", creds["edgeml-fleet"]), "whatever-id")
    fleet.connect(timeout=5)
    fleet.close()
    wrong = MqttTransport(url.format("dev-a", "not-the-password"), "dev-a")
    with pytest.raises(Exception, match="within"):
        wrong.connect(timeout=2)
    wrong.close()
    assert (tmp_path / "credentials").stat().st_mode & 0o777 == 0o600
    again, added = ensure_credentials(tmp_path / "credentials", ["dev-a", "dev-c"])
    assert added == ["dev-c"] and again["dev-a"] == creds["dev-a"], "re-running keeps existing passwords"


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd to cross-check")
def test_hashes_match_mosquitto_passwd(tmp_path):
    path = tmp_path / "p"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "dev-a", "s3cret"], check=True)
    theirs = path.read_text().strip().partition(":")[2]
    assert verify_password("s3cret", theirs) and not verify_password("other", theirs)
    ours = hash_password("s3cret")
    assert ours.startswith("$7$101$") and verify_password("s3cret", ours)


@pytest.mark.chaos
@pytest.mark.parametrize("bind_ids", [True, False], ids=["generated", "without-binding"])
def test_a_device_cannot_kick_another_by_borrowing_its_client_id(tmp_path, broker, bind_ids):
    creds, url = locked_broker(broker, tmp_path, bind_ids)
    fleet = MqttTransport(url.format("edgeml-fleet", creds["edgeml-fleet"]), "edgeml-fleet")
    fleet.connect(timeout=5)
    real = Watched(url.format("dev-b", creds["dev-b"]), "dev-b")
    arrived = threading.Event()
    real.transport.subscribe(desired_topic("dev-b"), lambda t, p: (real.got.append(p), arrived.set()))
    real.transport.connect(timeout=5)
    for _ in range(3):  # the attack the issue measured 3/3: user dev-a, client id dev-b
        thief = MqttTransport(url.format("dev-a", creds["dev-a"]), "dev-b")
        thief.connect(timeout=5)
        time.sleep(0.5)
        thief.close()
    fleet.publish(desired_topic("dev-b"), b"for dev-b", retain=True)
    got = arrived.wait(5)
    if bind_ids:
        assert real.drops == 0 and real.connects == 1, "the real dev-b was disconnected"
        assert got and real.got == [b"for dev-b"]
    else:  # the control: without the binding the same attack does kick dev-b (so the test can see it)
        assert real.drops >= 1
    for t in (fleet, real.transport):
        t.close()


def test_recommended_limits_fit_a_chunk_and_the_largest_message():
    limits = BrokerLimits(64 * 1024)
    assert limits.max_packet_size >= 256 * 1024
    conf = mosquitto_conf("acl", "passwords", "0.0.0.0:1883", limits=limits)
    for line in ("allow_anonymous false", "use_username_as_clientid true", "max_inflight_messages 16",
                 f"max_queued_bytes {64 * 64 * 1024}"):  # fmt: skip
        assert line in conf
    tls = mosquitto_conf("acl", None, "0.0.0.0:8883", tls=("ca.pem", "server.pem", "server.key"))
    assert "use_identity_as_username true" in tls and "require_certificate true" in tls

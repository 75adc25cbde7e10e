"""Transport over a real MQTT broker with paho-mqtt 2.x: background network thread, automatic
reconnect with back-off, subscriptions restored on every reconnect, a last will, optional TLS with
client certificates. Handler exceptions are logged and counted; they never stop the network loop."""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from edgeml.errors import EdgemlError
from edgeml.transport.broker_url import parse_broker_url
from edgeml.transport.transport import Handler, Will

__all__ = ["MqttTransport", "TlsConfig", "TransportError"]

log = logging.getLogger(__name__)
_QUEUE_LIMIT = 10_000  # messages held while offline; past it paho refuses new ones (reported as an error)


class TransportError(EdgemlError):
    """The broker cannot be reached or refused us."""


@dataclass(frozen=True)
class TlsConfig:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


class MqttTransport:
    def __init__(
        self, url: str, client_id: str, will: Will | None = None, tls: TlsConfig | None = None, keepalive: int = 30
    ) -> None:
        self.url = parse_broker_url(url)
        self.handler_errors = 0
        self.on_connect: Callable[[], None] | None = None  # called after every (re)connect, e.g. to re-announce
        self._subscriptions: dict[str, tuple[Handler, int]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._refused: str | None = None
        self._keepalive = keepalive
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        self._client.max_queued_messages_set(_QUEUE_LIMIT)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        if self.url.username:
            self._client.username_pw_set(self.url.username, self.url.password)
        if will is not None:
            self._client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        if tls is not None or self.url.tls:
            tls = tls or TlsConfig()
            self._client.tls_set(ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file,
                                 tls_version=ssl.PROTOCOL_TLS_CLIENT)  # fmt: skip
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def connect(self, timeout: float = 10.0) -> None:
        try:
            self._client.connect_async(self.url.host, self.url.port, keepalive=self._keepalive)
            self._client.loop_start()
        except (OSError, ValueError) as exc:
            raise TransportError(f"cannot reach the broker at {self.url}: {exc}") from exc
        if not self._connected.wait(timeout):
            reason = self._refused or "no answer"
            raise TransportError(
                f"could not connect to the broker at {self.url} within {timeout:g} s ({reason}); "
                "still retrying in the background",
                "check that the broker runs and the URL, port and TLS settings are right",
            )

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise TransportError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        self._last_publish = info

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        with self._lock:
            self._subscriptions[topic_filter] = (handler, qos)
        if self.connected:
            self._client.subscribe(topic_filter, qos)

    def unsubscribe(self, topic_filter: str) -> None:
        with self._lock:
            known = self._subscriptions.pop(topic_filter, None) is not None
        if known and self.connected:
            self._client.unsubscribe(topic_filter)

    def close(self, flush_timeout: float = 2.0) -> None:
        """Disconnect cleanly (the broker then drops the last will). Publishes still in flight get up to
        `flush_timeout` seconds first: a disconnect racing them resets the socket, and the broker would
        then fire the will instead of the goodbye."""
        last = getattr(self, "_last_publish", None)
        if last is not None and self.connected:
            with contextlib.suppress(RuntimeError, ValueError):
                last.wait_for_publish(timeout=flush_timeout)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            log.warning("broker %s refused the connection: %s", self.url, reason_code)
            return
        with self._lock:
            subs = [(f, qos) for f, (_, qos) in self._subscriptions.items()]
        for topic_filter, qos in subs:
            client.subscribe(topic_filter, qos)
        self._connected.set()
        log.info("connected to %s", self.url)
        if self.on_connect is not None:
            try:
                self.on_connect()
            except Exception:  # the owner's hook must not stop the network thread
                log.exception("on_connect hook failed")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        log.info("disconnected from %s (%s); reconnecting", self.url, reason_code)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            # NOTE: once per handler, however many of its filters match (the fleet's ask for one device's
            # retained hello overlaps its hello wildcard; both deliver to the same handler)
            handlers = list(dict.fromkeys(h for f, (h, _) in self._subscriptions.items() if _matches(f, message.topic)))
        for handler in handlers:
            try:
                handler(message.topic, message.payload)
            except Exception:  # someone else's bad message must never stop the network thread
                self.handler_errors += 1
                log.exception("handler for %s failed", message.topic)


def _matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching that also reads a shared subscription (`$share/GROUP/filter`) as its filter: the
    broker delivers the filter's topics, which paho's topic_matches_sub would not match to `$share/…`."""
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2]
    return mqtt.topic_matches_sub(topic_filter, topic)

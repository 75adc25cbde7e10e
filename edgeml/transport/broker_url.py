"""`mqtt://[user[:password]@]host:port` / `mqtts://…` → host, port, TLS flag and credentials, with errors
that say what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from edgeml.errors import EdgemlError

__all__ = ["BrokerUrl", "parse_broker_url", "redact_broker_url"]


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:  # never prints the password
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerUrl:
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
        raise EdgemlError(f"broker URL {redact_broker_url(url)!r} is not mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    try:
        port = parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
    except ValueError:
        raise EdgemlError(f"broker URL {redact_broker_url(url)!r} has an invalid port") from None
    return BrokerUrl(parsed.hostname, port, parsed.scheme == "mqtts", parsed.username, parsed.password)


def redact_broker_url(url: str) -> str:
    """`url` with its password replaced by `***`, for logs and messages: a secret is never printed."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{hostpart}"

"""MQTT transport for the fleet and the agent: one interface, a paho implementation, an in-memory twin."""

from __future__ import annotations

from edgeml.transport.broker_url import BrokerUrl, parse_broker_url
from edgeml.transport.transport import Handler, Transport, Will

__all__ = ["BrokerUrl", "Handler", "Transport", "Will", "parse_broker_url"]

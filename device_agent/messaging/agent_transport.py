"""The `[broker]` config section → an MQTT transport for this device: client id = device id, the offline
status as last will, TLS (with a client certificate) when the URL is mqtts:// or certificate files are set.
paho-mqtt is imported here, when the agent starts, not when `edgeml.device_agent` is imported."""

from __future__ import annotations

from edgeml.device_agent.config.agent_config import AgentConfig
from edgeml.errors import EdgemlError
from edgeml.transport import Transport, Will

__all__ = ["build_transport"]


def build_transport(config: AgentConfig, will: Will) -> Transport:
    try:
        from edgeml.transport.mqtt_transport import MqttTransport, TlsConfig
    except ImportError as exc:
        raise EdgemlError(f"the MQTT client is not installed ({exc})", "pip install 'edgeml[agent]'") from exc
    b = config.broker
    tls = TlsConfig(b.ca_file or None, b.cert_file or None, b.key_file or None)
    wants_tls = any((b.ca_file, b.cert_file, b.key_file))
    return MqttTransport(b.url, config.agent.device_id, will=will, tls=tls if wants_tls else None,
                         keepalive=b.keepalive_s)  # fmt: skip

"""The agent's MQTT link: session, birth/Will, heartbeat, paced publishing, collector acks."""

from agent.link.settings import LinkSettings, TlsSettings

__all__ = ["LinkSettings", "TlsSettings"]

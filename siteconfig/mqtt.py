"""MQTT link settings, as they appear under ``mqtt:`` in a site file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class TlsSettings(BaseModel):
    """TLS towards the broker; the CA is required, a client certificate optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


class LinkSettings(BaseModel):
    """How the agent reaches the broker and paces its traffic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    # The password lives in its own file (mode 0600), never in the site file.
    password_file: Path | None = None
    # The agent's ack key (64 hex digits, mode 0600, from enrol-agent): acks not signed with it
    # are refused (docs/protocol.md, "Ack signature"). None: acks are not authenticated.
    ack_key_file: Path | None = None
    tls: TlsSettings | None = None
    keepalive_s: int = Field(default=60, ge=5, le=3600)
    # The broker answers a CONNECT and every publish at once. Nothing back for this long while
    # something waits for an answer: the link is half-open, dropped and reconnected
    # (docs/protocol.md, "Transport"). No traffic of its own: what is published is the probe.
    answer_timeout_s: float = Field(default=15.0, gt=0)
    # Telemetry on its way (not yet acknowledged by the broker) is kept to about this many
    # seconds of the link's measured throughput: an alarm waits behind no more than that.
    telemetry_queue_s: float = Field(default=1.0, gt=0)
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=60)
    heartbeat_s: float = Field(default=60.0, gt=0)
    # Messages published but not yet acked by the collector.
    inflight_window: int = Field(default=200, ge=1, le=10_000)
    resend_after_s: float = Field(default=30.0, gt=0)
    # Optional cap on the backlog drain rate (messages per second); None = paced by acks only.
    max_rate_per_s: float | None = Field(default=None, gt=0)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=120.0, gt=0)

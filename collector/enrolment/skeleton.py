"""The site-file skeleton an enrolment hands to whoever prepares the box."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from collector.enrolment.errors import EnrolmentError
from siteconfig import ConfigError, load_site_text

# Where things live on the box (docs/deployment-pi.md): configuration on the read-only root,
# written at install time; the outbox, boot counter and status socket on the data partition.
BOX_PASSWORD_FILE = Path("/etc/shelterwatch/mqtt-password")
BOX_ACK_KEY_FILE = Path("/etc/shelterwatch/ack-key")
BOX_OUTBOX = Path("/var/lib/shelterwatch/outbox.db")


@dataclass(frozen=True, slots=True)
class SiteSkeleton:
    """What enrolment knows about the agent's site file; devices are added on site."""

    agent_id: str
    site_id: str
    site_kind: Literal["nro", "pm"]
    broker_host: str
    broker_port: int
    region: str = "unknown"
    parent_nro: str | None = None
    ca_file: Path | None = None
    collector_url: str | None = None


def site_yaml(skeleton: SiteSkeleton) -> str:
    """The skeleton as a site file that ``shelterwatch agent validate`` accepts."""
    mqtt: dict[str, Any] = {
        "host": skeleton.broker_host,
        "port": skeleton.broker_port,
        "username": skeleton.agent_id,
        "password_file": str(BOX_PASSWORD_FILE),
        "ack_key_file": str(BOX_ACK_KEY_FILE),
    }
    if skeleton.ca_file is not None:
        mqtt["tls"] = {"ca_file": str(skeleton.ca_file)}
    raw: dict[str, Any] = {
        "agent_id": skeleton.agent_id,
        "site_id": skeleton.site_id,
        "site_kind": skeleton.site_kind,
        "region": skeleton.region,
    }
    if skeleton.parent_nro is not None:
        raw["parent_nro"] = skeleton.parent_nro
    raw["mqtt"] = mqtt
    raw["outbox"] = {"path": str(BOX_OUTBOX)}
    if skeleton.collector_url is not None:
        raw["collector_api"] = {"url": skeleton.collector_url}
    raw["devices"] = []
    header = (
        f"# Site file of agent {skeleton.agent_id} (from `shelterwatch collector enrol-agent`).\n"
        "# Add the site's devices (examples: firmware_config/sites/*.yaml), then check it with\n"
        "#   shelterwatch agent validate /etc/shelterwatch/site.yaml\n"
    )
    text = header + yaml.safe_dump(raw, sort_keys=False)
    check_site_yaml(text, source=f"skeleton for {skeleton.agent_id}")
    return text


def check_site_yaml(text: str, *, source: str) -> None:
    """Refuse a skeleton the agent itself would refuse (bad id, bad URL...)."""
    try:
        load_site_text(text, source=source)
    except ConfigError as err:
        raise EnrolmentError(f"the site file would not load: {err}") from err

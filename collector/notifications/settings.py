"""Who the NOC team is and how mail leaves (``rules/notifications.yaml`` of the data directory)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from collector.datadir import NOTIFICATIONS, data_path, load_yaml


class SmtpSettings(BaseModel):
    """The relay that carries e-mails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = "shelterwatch@localhost"


class NotificationSettings(BaseModel):
    """NOC recipients, the SMTP relay, retry policy and the events that notify."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: list[str] = ["opened", "qualified", "escalated", "restored", "closed", "auto_closed"]
    noc_emails: list[str] = Field(default_factory=list)
    noc_webhooks: list[str] = Field(default_factory=list)
    smtp: SmtpSettings | None = None
    max_attempts: int = Field(default=8, ge=1)
    retry_base_s: float = Field(default=30.0, gt=0)


def load_notification_settings(path: Path | None = None) -> NotificationSettings:
    """The settings of the data directory in use (or of ``path``), validated."""
    return _settings(path or data_path(NOTIFICATIONS))


@lru_cache(maxsize=4)
def _settings(path: Path) -> NotificationSettings:
    return load_yaml(path, NotificationSettings, empty_ok=True)

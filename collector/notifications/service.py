"""Enqueue notifications with the change that causes them; deliver them with retries.

Enqueued in the same transaction as the ticket change, under a unique key, so a change is
notified once whatever instance makes it. Delivery locks due rows (SKIP LOCKED on PostgreSQL)
so two instances never send the same one; a crash between sending and recording can repeat a
delivery once, so webhooks carry the key as ``Idempotency-Key``.
"""

from __future__ import annotations

import json
import logging
import smtplib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.notifications.models import Notification
from collector.notifications.settings import NotificationSettings, load_notification_settings
from collector.sites.models import Client, Service
from collector.storage.upsert import insert_ignore

log = logging.getLogger(__name__)

Transport = Callable[[Notification, NotificationSettings], None]


def enqueue(
    session: Session,
    *,
    ticket: Any,
    event: str,
    detail: str,
    visible_to_client: bool,
    now: datetime,
    settings: NotificationSettings | None = None,
) -> int:
    """Queue this change's notifications; returns how many new rows were queued."""
    settings = settings or load_notification_settings()
    if event not in settings.events or not ticket.ref:
        return 0
    recipients: list[tuple[str, str]] = [("webhook", url) for url in settings.noc_webhooks]
    if settings.smtp is not None:
        recipients += [("email", address) for address in settings.noc_emails]
    if visible_to_client:
        for client in _clients_concerned(session, ticket):
            if client.notify_webhook:
                recipients.append(("webhook", client.notify_webhook))
            if settings.smtp is not None:
                recipients += [("email", a) for a in client.notify_emails.split(",") if a]
    subject = f"[{ticket.ref}] {event}: {ticket.title}"[:300]
    body = {
        "ticket": ticket.ref,
        "client_ref": ticket.client_ref,
        "event": event,
        "state": ticket.state,
        "criticality": ticket.criticality,
        "escalation_level": ticket.escalation_level,
        "site_id": ticket.site_id,
        "detail": detail,
        "at": now.isoformat(),
    }
    queued = 0
    for channel, recipient in dict.fromkeys(recipients):
        queued += insert_ignore(
            session,
            Notification,
            {
                "key": f"{ticket.ref}:{ticket.version}:{event}:{channel}:{recipient}"[:300],
                "ticket_ref": ticket.ref,
                "event": event,
                "channel": channel,
                "recipient": recipient,
                "subject": subject,
                "body": json.dumps(body),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )
    return queued


def _clients_concerned(session: Session, ticket: Any) -> list[Client]:
    if ticket.client_id:
        client = session.get(Client, ticket.client_id)
        return [client] if client else []
    if not ticket.site_id:
        return []
    ids = select(Service.client_id).where(Service.site_id == ticket.site_id)
    return list(session.scalars(select(Client).where(Client.client_id.in_(ids))))


def send_webhook(notification: Notification, _settings: NotificationSettings) -> None:
    """POST the JSON body; any non-2xx answer is a failure to retry."""
    response = httpx.post(
        notification.recipient,
        content=notification.body,
        headers={"Content-Type": "application/json", "Idempotency-Key": notification.key},
        timeout=5.0,
    )
    response.raise_for_status()


def send_email(notification: Notification, settings: NotificationSettings) -> None:
    """Send through the configured SMTP relay."""
    if settings.smtp is None:
        raise RuntimeError("no SMTP relay configured")
    message = EmailMessage()
    message["From"] = settings.smtp.sender
    message["To"] = notification.recipient
    message["Subject"] = notification.subject
    body = json.loads(notification.body)
    message.set_content("\n".join(f"{k}: {v}" for k, v in body.items()))
    with smtplib.SMTP(settings.smtp.host, settings.smtp.port, timeout=10) as smtp:
        smtp.send_message(message)


TRANSPORTS: Mapping[str, Transport] = {"webhook": send_webhook, "email": send_email}


def deliver_due(
    session: Session,
    *,
    now: datetime,
    settings: NotificationSettings | None = None,
    transports: Mapping[str, Transport] = TRANSPORTS,
    limit: int = 50,
) -> int:
    """Send what is due; failures back off exponentially until ``max_attempts``."""
    settings = settings or load_notification_settings()
    due = list(
        session.scalars(
            select(Notification)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    sent = 0
    for notification in due:
        notification.attempts += 1
        try:
            transports[notification.channel](notification, settings)
        except (httpx.HTTPError, OSError, smtplib.SMTPException, RuntimeError) as err:
            notification.last_error = str(err)[:2000]
            if notification.attempts >= settings.max_attempts:
                notification.status = "failed"
                log.error("notification %s failed for good: %s", notification.key, err)
            else:
                delay = min(3600.0, settings.retry_base_s * 2 ** (notification.attempts - 1))
                notification.next_attempt_at = now + timedelta(seconds=delay)
            continue
        notification.status = "sent"
        notification.sent_at = now
        sent += 1
    return sent

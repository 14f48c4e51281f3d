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
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from collector.inventory.models import Client, Service
from collector.notifications.duty import on_duty
from collector.notifications.models import Notification
from collector.notifications.settings import NotificationSettings, load_notification_settings
from collector.storage import tx_cache
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
    if event == "escalated" and settings.smtp is not None:
        # The level's contacts in each client's escalation matrix, if their hours are open.
        for client in _clients_concerned(session, ticket):
            for contact in on_duty(
                session, client_id=client.client_id, level=ticket.escalation_level, now=now
            ):
                if contact.email:
                    recipients.append(("email", contact.email))
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


# Built once: every alarm ticket's change asks it, and building costs more than running it.
_CLIENTS_AT_SITE = select(Client).where(
    Client.client_id.in_(select(Service.client_id).where(Service.site_id == bindparam("site_id")))
)


def _clients_concerned(session: Session, ticket: Any) -> list[Client]:
    if ticket.client_id:
        client = session.get(Client, ticket.client_id)
        return [client] if client else []
    if not ticket.site_id:
        return []
    # One lookup per site and transaction: a storm logs many operations at the same sites.
    cache: dict[str, list[Client]] = tx_cache(session).setdefault("clients_by_site", {})
    if ticket.site_id not in cache:
        cache[ticket.site_id] = list(session.scalars(_CLIENTS_AT_SITE, {"site_id": ticket.site_id}))
    return cache[ticket.site_id]


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
    """Send what is due, committing after each one; failures back off exponentially until
    ``max_attempts``. Returns how many were sent."""
    settings = settings or load_notification_settings()
    sent = 0
    for _ in range(limit):
        # One at a time, each recorded before the next is sent: an instance killed mid-way
        # repeats at most the one it was sending (with the same Idempotency-Key), and the
        # others' rows stay free for the other instances.
        notification = session.scalars(
            select(Notification)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if notification is None:
            break
        sent += _attempt(notification, settings=settings, transports=transports, now=now)
        session.commit()
    return sent


def _attempt(
    notification: Notification,
    *,
    settings: NotificationSettings,
    transports: Mapping[str, Transport],
    now: datetime,
) -> int:
    """Try one delivery; 1 if it went out."""
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
        return 0
    notification.status = "sent"
    notification.sent_at = now
    return 1

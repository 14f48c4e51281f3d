"""Token authentication: tokens are random, shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.identity.access import Principal, Role
from collector.identity.models import ApiUser
from collector.inventory.models import Client

TOKEN_PREFIX = "sw_"


class UserRefused(ValueError):
    """A user that cannot be created as asked; the message says why."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    *,
    name: str,
    role: Role,
    now: datetime,
    client_id: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiUser, str]:
    """Create a user; returns it with its plaintext token (the only time it is visible).

    A client user belongs to a known client; names are unique (they are who acts, in every
    operations log, and whom interventions and inspections name)."""
    if (role is Role.CLIENT) != (client_id is not None):
        raise UserRefused("a client id is required for, and only for, the client role")
    if client_id is not None and session.get(Client, client_id) is None:
        raise UserRefused(f"no client {client_id!r}: add it to the inventory first")
    if session.scalar(select(ApiUser.id).where(ApiUser.name == name)) is not None:
        raise UserRefused(f"a user named {name!r} already exists")
    # A fixed prefix: a token never starts with "-" (taken for an option on a command line)
    # and is recognisable when it leaks into a log or a commit.
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user = ApiUser(
        name=name,
        role=role.value,
        client_id=client_id,
        token_sha256=_digest(token),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(user)
    session.flush()
    return user, token


def principal_for_token(session: Session, *, token: str, now: datetime) -> Principal | None:
    """The principal a token stands for, or None when unknown, disabled or expired."""
    user = session.scalars(select(ApiUser).where(ApiUser.token_sha256 == _digest(token))).first()
    if user is None or user.disabled or (user.expires_at is not None and user.expires_at <= now):
        return None
    return Principal(user_id=user.name, role=Role(user.role), client_id=user.client_id)

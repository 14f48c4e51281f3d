"""Recording revisions: a file whose content changed since the last revision gets a new one."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.revisions.models import Revision


def record_file_revisions(
    session: Session,
    *,
    kind: str,
    folder: Path,
    files: Iterable[Path],
    actor: str,
    now: datetime,
) -> list[Revision]:
    """A revision for each file (relative to ``folder``) whose content differs from its last
    revision (or that has none yet); returns those recorded."""
    recorded = []
    for relative in files:
        content = (folder / relative).read_text()
        digest = hashlib.sha256(content.encode()).hexdigest()
        key = relative.as_posix()
        last = latest(session, kind=kind, key=key)
        if last is not None and last.sha256 == digest:
            continue
        diff = "" if last is None else unified_diff(last.content, content, name=key)
        revision = Revision(
            object_kind=kind,
            object_key=key,
            sha256=digest,
            previous_sha256=last.sha256 if last is not None else None,
            content=content,
            diff=diff,
            actor=actor[:200],
            at=now,
        )
        session.add(revision)
        recorded.append(revision)
    session.flush()
    return recorded


def latest(session: Session, *, kind: str, key: str) -> Revision | None:
    """The last revision of one object, or None."""
    return session.scalars(
        select(Revision)
        .where(Revision.object_kind == kind, Revision.object_key == key)
        .order_by(Revision.id.desc())
        .limit(1)
    ).first()


def history(session: Session, *, kind: str, key: str) -> list[Revision]:
    """Every revision of one object, oldest first."""
    return list(
        session.scalars(
            select(Revision)
            .where(Revision.object_kind == kind, Revision.object_key == key)
            .order_by(Revision.id)
        )
    )


def unified_diff(before: str, after: str, *, name: str) -> str:
    """What changed, as ``diff -u`` would show it."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
    )

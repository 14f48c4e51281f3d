"""Conditional GETs: an ETag that identifies exactly what this caller was shown, and a 304 when
the caller already has it (``If-None-Match``).

The ETag is ``"<version>.<digest>"``: the version is the resource's own counter, which
``If-Match`` checks before a change (``deps.if_match_version`` reads it); the digest is over
the representation sent and the caller's view (role, client), so a representation that changes
without a new version (the SLA clock runs) gets a new ETag, and one caller's cached copy never
validates for another."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from pydantic import BaseModel

from collector.identity.access import Principal

# The caller's copy is theirs alone: shared caches must not keep it, and it varies by token.
PRIVATE_HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Authorization"}


def view_etag(*, version: int, body: bytes, principal: Principal) -> str:
    """The ETag of ``body`` as ``principal`` sees version ``version`` of a resource."""
    digest = hashlib.sha256()
    digest.update(f"{principal.role.value}\0{principal.client_id or ''}\0".encode())
    digest.update(body)
    return f'"{version}.{digest.hexdigest()[:16]}"'


def conditional(
    request: Request, model: BaseModel, *, version: int, principal: Principal
) -> Response:
    """``model`` as JSON with its ETag, or 304 Not Modified when ``If-None-Match`` names it."""
    body = model.model_dump_json().encode()
    etag = view_etag(version=version, body=body, principal=principal)
    headers = {"ETag": etag, **PRIVATE_HEADERS}
    wanted = request.headers.get("if-none-match")
    if wanted is not None and _matches(wanted, etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


def _matches(header: str, etag: str) -> bool:
    # RFC 9110 13.1.2: a list of entity tags (weak comparison), or "*".
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags

"""One error format for every 4xx/5xx: RFC 9457 problem documents (``application/problem+json``)
with ``type``, ``title`` (from the catalogue, in the caller's language), ``status``, ``detail``
(what is wrong, naming where), and two extension members: ``code`` (a stable machine word) and
``details`` (per-field reasons of a 422, or null). A domain error may add its own members
(``problem_members()``: a refused ticket transition lists the allowed ones)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from collector.i18n import MESSAGES, Language, negotiate, text

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:shelterwatch:problem:"

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def problem_code(status: int) -> str:
    """The stable machine word of a status (``conflict`` for 409)."""
    return _CODES.get(status, "error")


def problem_body(
    status: int,
    detail: str,
    *,
    language: Language,
    details: Any = None,
    members: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem document of an error."""
    key = f"problem.title.{status}"
    title = text(key if key in MESSAGES else "problem.title.other", language)
    code = problem_code(status)
    return {
        "type": f"{PROBLEM_TYPE_PREFIX}{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "details": details,
        **(members or {}),
    }


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    details: Any = None,
    members: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The problem document as a response, in the caller's language."""
    language = negotiate(request.headers.get("accept-language"))
    if detail in MESSAGES:  # a detail written as a catalogue key is translated too
        detail = text(detail, language)
    return JSONResponse(
        problem_body(status, detail, language=language, details=details, members=members),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Content-Language": language, "Vary": "Accept-Language", **(headers or {})},
    )


def install_domain_errors(app: FastAPI, statuses: Mapping[type[Exception], int]) -> None:
    """Answer each domain exception with its status and its own message, in the one format.

    Services raise errors that say what is wrong; routes stay thin and do not translate them.
    """
    for exc_type, status in statuses.items():

        async def _domain(req: Request, exc: Exception, status: int = status) -> JSONResponse:
            members = getattr(exc, "problem_members", None)
            return problem_response(
                req, status, str(exc), members=members() if callable(members) else None
            )

        app.add_exception_handler(exc_type, _domain)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the one format."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return problem_response(req, exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(req: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
        ]
        first = details[0] if details else {"where": "?", "reason": "invalid"}
        return problem_response(req, 422, f"{first['where']}: {first['reason']}", details=details)

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(req, 500, "problem.detail.internal")


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": (
        "RFC 9457 problem document. `title` is in the caller's language (French by default, "
        "English with `Accept-Language: en`); `detail` says what is wrong and where; `code` is "
        "a stable word for programs; `details` lists each invalid field of a 422 "
        "(`where`, `reason`), else null. A refused ticket transition adds "
        "`allowed_transitions`."
    ),
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri", "example": f"{PROBLEM_TYPE_PREFIX}conflict"},
        "title": {"type": "string", "example": "Incompatible avec l'état actuel"},
        "status": {"type": "integer", "example": 409},
        "detail": {
            "type": "string",
            "example": "ticket TK-2026-000042: cannot go from closed to resolved; allowed: none "
            "(final state)",
        },
        "code": {"type": "string", "example": "conflict"},
        "details": {
            "anyOf": [
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"where": {"type": "string"}, "reason": {"type": "string"}},
                    },
                },
                {"type": "null"},
            ]
        },
        "allowed_transitions": {"type": "array", "items": {"type": "string"}},
    },
}

_DESCRIPTIONS = {
    400: "Requête incorrecte / Bad request",
    401: "Jeton absent, invalide ou expiré / Missing, invalid or expired token",
    403: "Rôle sans ce droit, ou ressource d'un autre client / Not allowed for this role",
    404: "Introuvable / Not found",
    409: "Incompatible avec l'état actuel / Conflict with the current state",
    412: "Modifié entre-temps (If-Match périmé) : rechargez / Changed meanwhile: reload",
    422: "Requête non valide / Invalid request",
    500: "Erreur interne / Internal error",
    503: "Service indisponible / Unavailable",
}


def problem_responses(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: these statuses answer a problem document."""
    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Erreur / Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": ref}},
        }
        for status in sorted(set(statuses))
    }

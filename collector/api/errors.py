"""One error format for every 4xx/5xx: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    422: "invalid_request",
    503: "unavailable",
}


def error_body(status: int, message: str, details: Any = None) -> dict[str, Any]:
    """The error document."""
    return {"error": {"code": _CODES.get(status, "error"), "message": message, "details": details}}


def install_domain_errors(app: FastAPI, statuses: Mapping[type[Exception], int]) -> None:
    """Answer each domain exception with its status and its own message, in the one format.

    Services raise errors that say what is wrong; routes stay thin and do not translate them.
    """
    for exc_type, status in statuses.items():

        async def _domain(_req: Request, exc: Exception, status: int = status) -> JSONResponse:
            return JSONResponse(error_body(status, str(exc)), status_code=status)

        app.add_exception_handler(exc_type, _domain)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the one format."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail)),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
        ]
        first = details[0] if details else {"where": "?", "reason": "invalid"}
        return JSONResponse(
            error_body(422, f"{first['where']}: {first['reason']}", details), status_code=422
        )

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body(500, "internal error"), status_code=500)


ERROR_DOCUMENT_SCHEMA: dict[str, Any] = {
    "title": "ErrorDocument",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document say what errors really look like: FastAPI documents its own
    ``{"detail": ...}`` for 422, which this API never sends."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorDocument"] = ERROR_DOCUMENT_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        ref = {"$ref": "#/components/schemas/ErrorDocument"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                response = operation.get("responses", {}).get("422")
                if response is not None:
                    response["content"] = {"application/json": {"schema": ref}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

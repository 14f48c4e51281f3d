"""The OpenAPI document as a client needs it, and the pages that show it.

The document says what the API really does: bearer authentication (the Authorize button: the
scheme comes from ``collector.identity.deps``), problem documents (RFC 9457) for every error,
and each status a route can answer — read from the operation itself: 401/403 when it needs a
token, 404 when its path names a resource, 400/412 with ``If-Match``, 422 with parameters or a
body, 400 with a body — plus the statuses of the feature's domain errors (given per router in
``app``).
Swagger UI (``/docs``) and ReDoc (``/redoc``) load their assets from the collector itself: no
request leaves its origin, so they work on an offline NOC network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from collector.api.errors import PROBLEM_MEDIA_TYPE, PROBLEM_SCHEMA, problem_responses

DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs-assets"
# Nothing these pages load may come from elsewhere (ReDoc's footer logo is on a CDN): the
# browser refuses it before any request is made.
SAME_ORIGIN_ONLY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def _statuses(operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation's own shape implies."""
    statuses: set[int] = set()
    if operation.get("security"):
        statuses |= {401, 403}
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if any(p.get("in") == "header" and p.get("name", "").lower() == "if-match" for p in parameters):
        statuses |= {400, 412}
    if parameters or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.add(400)  # a body that is not JSON at all
    return statuses


def document_api(app: FastAPI) -> None:
    """Complete the generated document (see the module's docstring); built once, on demand."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)  # FastAPI's own 422 body, which this API never sends
        problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, response in problem_responses(_statuses(operation)).items():
                    responses.setdefault(str(status), response)
                for status, response in responses.items():
                    if status[0] in "45":
                        response["content"] = problem
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def serve_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` from assets shipped with the collector. The app
    must be built with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _same_origin(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} — documentation",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
                # Swagger UI would send the document to validator.swagger.io for a badge.
                swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _same_origin(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} — ReDoc",
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )


def _same_origin(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
    return page

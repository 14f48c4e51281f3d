"""The FastAPI application: NOC API, health, dashboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from clocks import Clock
from collector.alarms.routes import ERROR_STATUS as ALARM_ERRORS
from collector.alarms.routes import router as alarms_router
from collector.api.errors import install_domain_errors, install_error_handlers, problem_responses
from collector.feed.routes import router as stream_router
from collector.http_metrics import HttpMetrics, RequestTimer
from collector.identity.access import Action, Forbidden
from collector.identity.deps import requires
from collector.identity.routes import router as me_router
from collector.ingest.routes import ERROR_STATUS as INGEST_ERRORS
from collector.ingest.routes import router as ingest_router
from collector.ingest.store import BatchStore
from collector.inspections.routes import ERROR_STATUS as INSPECTION_ERRORS
from collector.inspections.routes import router as inspections_router
from collector.listeners import alarm_engine
from collector.maintenance.routes import router as maintenance_router
from collector.metrics import IngestStatsSource, render_metrics
from collector.openapi import document_api, serve_docs
from collector.problems.routes import ERROR_STATUS as PROBLEM_ERRORS
from collector.problems.routes import router as problems_router
from collector.reports.routes import router as reports_router
from collector.sites.inventory_routes import router as inventory_router
from collector.sites.routes import ERROR_STATUS as INVENTORY_ERRORS
from collector.sites.routes import router as sites_router
from collector.tickets.routes import ERROR_STATUS as TICKET_ERRORS
from collector.tickets.routes import router as tickets_router
from collector.tickets.urgent_routes import router as urgent_router

STATIC_DIR = Path(__file__).resolve().parent / "dashboard" / "static"


def create_app(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    readiness: Callable[[], dict[str, bool]] | None = None,
    ingest_stats: IngestStatsSource | None = None,
    ingest_store: BatchStore | None = None,
) -> FastAPI:
    """Build the app around a session factory and a clock. ``ingest_store`` applies a
    quarantined stream the NOC releases (by default with the collector's alarm listeners)."""
    app = FastAPI(
        title="shelterwatch NOC API",
        version="1",
        description=(
            "Sites, alarms and tickets of the FTTH technical sites supervision. / Sites, "
            "alarmes et tickets de la supervision des sites techniques FTTH.\n\n"
            "Errors are RFC 9457 problem documents (`application/problem+json`), their `title` "
            "in French unless `Accept-Language` asks for English."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.session_factory = session_factory
    app.state.clock = clock
    app.state.ingest_store = ingest_store or BatchStore(alarm_engine())
    # Operators' changes of an alarm (acknowledgements) reach the same listeners as ingest's.
    app.state.alarm_engine = app.state.ingest_store.engine
    http_metrics = HttpMetrics()
    app.add_middleware(RequestTimer, metrics=http_metrics)
    install_error_handlers(app)
    document_api(app)
    serve_docs(app)
    install_domain_errors(app, {Forbidden: 403})
    domain_errors = {
        "alarms": ALARM_ERRORS,
        "tickets": TICKET_ERRORS,
        "inventory": INVENTORY_ERRORS,
        "inspections": INSPECTION_ERRORS,
        "problems": PROBLEM_ERRORS,
        "ingest": INGEST_ERRORS,
    }
    for statuses in domain_errors.values():
        install_domain_errors(app, statuses)

    def errors(feature: str, *more: int) -> dict[int | str, dict[str, Any]]:
        # What a router's routes may answer besides what ``document_api`` finds by itself.
        return problem_responses({*domain_errors.get(feature, {}).values(), *more})

    app.include_router(me_router)
    app.include_router(sites_router, responses=errors("inventory"))
    app.include_router(inventory_router, responses=errors("inventory"))
    app.include_router(alarms_router, responses=errors("alarms"))
    app.include_router(tickets_router, responses=errors("tickets"))
    app.include_router(urgent_router, responses=errors("tickets"))
    app.include_router(problems_router, responses=errors("problems"))
    app.include_router(maintenance_router, responses=errors("maintenance", 404, 409))
    app.include_router(inspections_router, responses=errors("inspections"))
    app.include_router(reports_router, responses=errors("reports", 400, 404, 422))
    app.include_router(stream_router, responses=errors("feed", 400))
    app.include_router(ingest_router, responses=errors("ingest", 409, 422))

    @app.get("/healthz", tags=["health"])
    def healthz() -> JSONResponse:
        """200 when every dependency is ready, 503 otherwise (no auth)."""
        checks = readiness() if readiness is not None else {}
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=PlainTextResponse,
        dependencies=[requires(Action.METRICS_READ)],
    )
    def metrics() -> PlainTextResponse:
        """Prometheus metrics, fleet-wide (a bearer token: a ``monitoring`` user for Prometheus)."""
        return PlainTextResponse(
            render_metrics(
                session_factory, ingest_stats, now=clock.now(), http=http_metrics.histogram
            ),
            media_type="text/plain; version=0.0.4",
        )

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

"""The HTTP request duration histogram: an ASGI middleware times every request and counts it
under the path template of the route that answered it (``/api/v1/tickets/{ref}``), never the
raw path, so a scan of random URLs or 21,000 site ids adds no series."""

from __future__ import annotations

import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REQUEST_DURATION", "HttpMetrics", "RequestTimer"]

REQUEST_DURATION = "shelterwatch_http_request_duration_seconds"
# The route label of a request no route matched (a 404 on an unknown path).
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """One app's request durations (its own histogram: two apps in one process never mix)."""

    def __init__(self) -> None:
        self.histogram = Histogram(
            REQUEST_DURATION,
            "Durée des requêtes HTTP par modèle de route / HTTP request duration by route "
            "template, method and status class",
            labelnames=["route", "method", "status_class"],
            registry=None,
        )

    def observe(self, scope: Scope, status: int, duration_s: float) -> None:
        """Count one request under its route template, method and status class."""
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope.get("method", "")
        self.histogram.labels(
            route=template,
            method=method if method in _METHODS else "other",
            status_class=f"{status // 100}xx",
        ).observe(duration_s)


class RequestTimer:
    """ASGI middleware: from a request's arrival to its response's last byte. A live stream
    (``text/event-stream``) is timed to its opening: its hours are no latency."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        # Real time, not the collector's clock: this measures work, it is no domain instant.
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering
        done = False

        def record() -> None:
            nonlocal done
            if not done:
                done = True
                self._metrics.observe(scope, status, time.perf_counter() - started)

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if _ends_timing(message):
                record()

        try:
            await self._app(scope, receive, timed_send)
        finally:
            record()


def _ends_timing(message: Message) -> bool:
    """The response's last body part, or the start of a live stream."""
    if message["type"] == "http.response.body":
        return not message.get("more_body")
    return message["type"] == "http.response.start" and any(
        name.lower() == b"content-type" and value.startswith(b"text/event-stream")
        for name, value in message.get("headers", ())
    )

"""The HTTP duration histogram: each request under its route template, method and status
class, never its raw path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from collector.http_metrics import REQUEST_DURATION, HttpMetrics, RequestTimer
from protocol import Transition
from tests.collector.conftest import Desk
from tests.collector.metrics.scrape import scrape, value

COUNT = f"{REQUEST_DURATION}_count"


def test_a_call_shows_up_under_its_route_template_not_its_path(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    for _ in range(2):
        assert desk.client.get(f"/api/v1/tickets/{ref}").status_code == 200
    assert desk.client.get("/api/v1/tickets/TKT-2026-999999").status_code == 404
    assert desk.client.get("/no/such/page").status_code == 404
    assert desk.client.request("BREW", "/api/v1/tickets").status_code == 405
    families = scrape(desk)
    ticket = "/api/v1/tickets/{ref}"
    assert value(families, COUNT, route=ticket, method="GET", status_class="2xx") == 2
    assert value(families, COUNT, route=ticket, method="GET", status_class="4xx") == 1
    assert value(families, COUNT, route="unmatched", method="GET", status_class="4xx") == 1
    assert value(families, COUNT, route="/api/v1/tickets", method="other", status_class="4xx") == 1
    bucket = f"{REQUEST_DURATION}_bucket"
    assert value(families, bucket, route=ticket, method="GET", status_class="2xx", le="+Inf") == 2
    labels = {v for samples in families.values() for s in samples for v in s.labels.values()}
    assert not {ref, "TKT-2026-999999", "/no/such/page"} & labels


def test_a_failing_route_counts_as_a_server_error() -> None:
    app = FastAPI()
    metrics = HttpMetrics()
    app.add_middleware(RequestTimer, metrics=metrics)

    @app.get("/boom/{n}")
    def boom(n: int) -> None:
        raise RuntimeError(f"boom {n}")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/boom/7").status_code == 500
    samples = [s for f in metrics.histogram.collect() for s in f.samples]
    counts = {(s.labels["route"], s.labels["status_class"]) for s in samples if s.name == COUNT}
    assert counts == {("/boom/{n}", "5xx")}
    text = "\n".join(f"{s.name}{s.labels} {s.value}" for s in samples)
    assert "/boom/7" not in text


def test_a_live_stream_is_timed_to_its_opening_not_its_length() -> None:
    app = FastAPI()
    metrics = HttpMetrics()
    app.add_middleware(RequestTimer, metrics=metrics)

    async def changes() -> AsyncIterator[str]:
        yield "data: 1\n\n"
        await asyncio.sleep(1.0)  # a live stream stays open for hours
        yield "data: 2\n\n"

    @app.get("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(changes(), media_type="text/event-stream")

    assert TestClient(app).get("/stream").text == "data: 1\n\ndata: 2\n\n"
    samples = [s for f in metrics.histogram.collect() for s in f.samples]
    [total] = [s.value for s in samples if s.name == f"{REQUEST_DURATION}_sum"]
    assert total < 1.0

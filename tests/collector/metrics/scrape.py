"""Reading ``GET /metrics`` as Prometheus does: parsed, not grepped."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.collector.conftest import Desk


def scrape(desk: Desk) -> dict[str, list[Sample]]:
    """Every sample of the exposition by family name."""
    response = desk.client.get("/metrics")
    assert response.status_code == 200, response.text
    return {f.name: f.samples for f in text_string_to_metric_families(response.text)}


def value(families: dict[str, list[Sample]], sample: str, **labels: str) -> float:
    """The one sample named ``sample`` with exactly these labels (``le`` included)."""
    found = [
        s.value
        for samples in families.values()
        for s in samples
        if s.name == sample and s.labels == labels
    ]
    assert len(found) == 1, f"{sample}{labels}: {len(found)} samples"
    return found[0]

"""The shipped Grafana dashboard loads, picks its Prometheus source from a variable, and every
panel queries only metrics (and labels) the collector exports."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field

from collector.http_metrics import HttpMetrics
from collector.ingest.service import IngestStats
from collector.inventory.models import Agent, Site
from collector.metrics import render_metrics
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "shelterwatch.json"
# Labels Prometheus adds to every series it scrapes, and the histogram bucket bound.
SCRAPE_LABELS = {"job", "instance", "le"}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class DataSource(_Open):
    type: Literal["prometheus"]
    uid: Literal["${datasource}"]


class Target(_Open):
    refId: str
    expr: str = Field(min_length=1)
    datasource: DataSource


class GridPos(_Open):
    h: int = Field(gt=0)
    w: int = Field(gt=0, le=24)
    x: int = Field(ge=0, lt=24)
    y: int = Field(ge=0)


class Panel(_Open):
    id: int
    type: Literal["row", "stat", "timeseries", "bargauge", "table"]
    # French first, then English: "Agents injoignables / Unreachable agents".
    title: str = Field(pattern=r"^[^/]+ / [^/]+$")
    gridPos: GridPos
    datasource: DataSource | None = None
    targets: list[Target] = []


class Variable(_Open):
    name: str
    type: str


class Templating(_Open):
    list: list[Variable]


class Dashboard(_Open):
    """What Grafana needs to import the file (its JSON model, the fields it reads)."""

    title: str
    uid: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,40}$")
    schemaVersion: int
    panels: list[Panel] = Field(min_length=1)
    templating: Templating


@pytest.fixture(scope="module")
def dashboard() -> Dashboard:
    return Dashboard.model_validate(json.loads(DASHBOARD.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Each sample name the collector exports, with its label names (from a real exposition:
    one agent whose listener refused a datagram, an ingest that ran, one HTTP request timed)."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'c.db'}")
    create_schema(engine)
    sessions = make_session_factory(engine)
    listener = {"kind": "syslog", "received": 2, "accepted": 1, "rejected": {"unparsed": 1}}
    with sessions() as session:
        session.add(Site(site_id="PM-1"))
        session.flush()
        session.add(Agent(agent_id="a1", site_id="PM-1", listeners_json=json.dumps([listener])))
        session.commit()
    stats = IngestStats()
    stats.lag.observe([0.1])
    http = HttpMetrics()
    http.observe({"method": "GET"}, 200, 0.01)
    text = render_metrics(
        sessions,
        lambda: stats,
        now=datetime(2026, 1, 5, 9, tzinfo=UTC),
        http=http.histogram,
    ).decode()
    engine.dispose()
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_the_dashboard_loads_and_takes_its_prometheus_source_from_a_variable(
    dashboard: Dashboard,
) -> None:
    variables = {v.name: v for v in dashboard.templating.list}
    assert variables["datasource"].type == "datasource"
    assert variables["datasource"].model_dump()["query"] == "prometheus"
    queried = [p for p in dashboard.panels if p.type != "row"]
    assert queried
    assert all(p.datasource is not None and p.targets for p in queried)
    assert len({p.id for p in dashboard.panels}) == len(dashboard.panels)


def _metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:shelterwatch|process|python)_[a-zA-Z0-9_]*)\b", expr))


def test_every_panel_queries_only_metrics_and_labels_the_collector_exports(
    dashboard: Dashboard, exported: dict[str, set[str]]
) -> None:
    unknown = []
    for panel in dashboard.panels:
        for target in panel.targets:
            metrics = _metrics_in(target.expr)
            assert metrics, f"{panel.title}: no metric in {target.expr}"
            unknown += [f"{panel.title}: {m}" for m in metrics if m not in exported]
            known_labels = set().union(*(exported.get(m, set()) for m in metrics))
            selected = re.findall(r"\b(\w+)\s*(?:=~|!=|!~|=)\s*\"", target.expr)
            grouped = re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", target.expr)
            for label in [*selected, *(g.strip() for gs in grouped for g in gs.split(","))]:
                if label not in known_labels | SCRAPE_LABELS:
                    unknown.append(f"{panel.title}: label {label}")
    assert unknown == []

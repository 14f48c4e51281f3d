"""``shelterwatch agent inspect``: a technician runs the site's inspection from the box, against
a real collector API (uvicorn on a free port), with the technician's token."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cli.main import main
from clocks import ManualClock
from collector.app import create_app
from collector.datadir import DEMO_INVENTORY_DIR
from collector.identity.access import Role
from collector.identity.tokens import create_user
from collector.inventory.files import load_inventory
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema
from simulators.broker import free_port

INVENTORY = DEMO_INVENTORY_DIR
SITE = "PM-LYO-0101"


@dataclass
class Collector:
    url: str
    tokens: dict[str, str]

    def inspections(self) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.url}/api/v1/inspections",
            headers={"Authorization": f"Bearer {self.tokens['noc']}"},
            timeout=10,
        )
        found: list[dict[str, Any]] = response.json()
        return found


@pytest.fixture
def collector(tmp_path: Path, clock: ManualClock) -> Iterator[Collector]:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    create_schema(engine)
    sessions = make_session_factory(engine)
    now = clock.now()
    with sessions() as session:
        load_inventory(session, INVENTORY)
        tokens = {
            role: create_user(session, name=f"{role}-1", role=Role(role), now=now)[1]
            for role in ("noc", "technician", "viewer")
        }
        tokens["expired"] = create_user(
            session,
            name="yesterday",
            role=Role.TECHNICIAN,
            now=now - timedelta(days=1),
            expires_at=now - timedelta(minutes=1),
        )[1]
        session.commit()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(session_factory=sessions, clock=clock),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, name="collector-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield Collector(f"http://127.0.0.1:{port}", tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


def site_file(
    tmp_path: Path, *, site_id: str = SITE, url: str | None = None, name: str = "site"
) -> Path:
    path = tmp_path / f"{name}.yaml"
    api = f"collector_api: {{url: '{url}'}}\n" if url else ""
    path.write_text(
        f"agent_id: box-{site_id.lower()}\nsite_id: {site_id}\nsite_kind: pm\n"
        f"outbox: {{path: {tmp_path / 'outbox.db'}}}\n{api}"
    )
    return path


def inspect(*args: str) -> int:
    return main(["agent", "inspect", *args])


def test_a_technician_starts_follows_and_completes_the_inspection(
    tmp_path: Path, collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(site_file(tmp_path, url=collector.url))]
    token = ["--token", collector.tokens["technician"]]
    assert (
        inspect("start", *config, *token, "--duration-min", "45", "--technician", "technician-1")
        == 0
    )
    started = capsys.readouterr().out
    assert f"of {SITE} started by technician-1" in started and "test results" in started
    assert "[ ] fire_detection" in started
    [running] = collector.inspections()
    assert (running["site_id"], running["status"], running["technician"]) == (
        SITE,
        "active",
        "technician-1",
    )
    assert inspect("status", *config, *token) == 0
    assert f"inspection {running['id']} of {SITE}: active" in capsys.readouterr().out
    assert inspect("complete", *config, *token, "--notes", "filter changed") == 0
    assert "completed" in capsys.readouterr().out
    [report] = collector.inspections()
    assert (report["status"], report["notes"]) == ("completed", "filter changed")
    assert inspect("status", *config, *token) == 1  # nothing running any more


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("expired", "the collector refused the technician token: invalid or expired"),
        ("wrong", "the collector refused the technician token: invalid or expired"),
        ("viewer", "the collector refused: the viewer role may not do inspection.start"),
        (
            "technician",
            "the collector refused: a technician starts inspections in its own name"
            " (technician-1), not 'J. Martin'",
        ),
    ],
)
def test_a_refused_token_is_one_line_and_starts_nothing(
    tmp_path: Path,
    collector: Collector,
    capsys: pytest.CaptureFixture[str],
    who: str,
    message: str,
) -> None:
    token = collector.tokens.get(who, "not-a-token")
    config = site_file(tmp_path, url=collector.url)
    named = ["--technician", "J. Martin"]  # a technician's token names only its own user
    assert inspect("start", "--config", str(config), f"--token={token}", *named) == 2
    assert capsys.readouterr().err == f"shelterwatch: error: {message}\n"
    assert collector.inspections() == []


def test_an_unknown_site_gets_the_collectors_answer(
    tmp_path: Path, collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    config = site_file(tmp_path, site_id="PM-NOWHERE")
    args = ["--config", str(config), "--collector-url", collector.url]
    assert inspect("start", *args, f"--token={collector.tokens['technician']}") == 2
    assert capsys.readouterr().err == (
        "shelterwatch: error: the collector refused: "
        "site PM-NOWHERE not found: no inspection started\n"
    )
    assert collector.inspections() == []


def test_complete_without_an_inspection_says_so(
    tmp_path: Path, collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(site_file(tmp_path, url=collector.url))]
    assert inspect("complete", *config, f"--token={collector.tokens['technician']}") == 2
    assert f"no inspection of {SITE} to complete" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("site", "extra", "message"),
    [
        ("missing.yaml", [], "missing.yaml: <file>: No such file or directory"),
        ("no-url", [], "no collector API URL: add collector_api"),
        ("no-url", ["--collector-url", "noc.example"], "expected http(s)://HOST[:PORT]"),
        ("unreachable", [], "collector unreachable at http://127.0.0.1:"),
    ],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    site: str,
    extra: list[str],
    message: str,
) -> None:
    paths = {
        "missing.yaml": tmp_path / "missing.yaml",
        "no-url": site_file(tmp_path, name="no-url"),
        "unreachable": site_file(tmp_path, url=f"http://127.0.0.1:{free_port()}", name="down"),
    }
    assert inspect("start", "--config", str(paths[site]), "--token", "t", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1

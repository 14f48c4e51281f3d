"""Bad input on the command line gives one clear line and a non-zero exit, no traceback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from collector.datadir import SHIPPED_DATA_DIR


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("agent_id: a1\nsite_id: S1\nsite_kind: shelter\n", "site_kind"),
        ("agent_id: a1\nsite_id: S1\nsite_kind: pm\nmqtt: {port: 99999}\n", "mqtt.port"),
        ("agent_id: a1\nsite_id: S1\nsite_kind: pm\nbogus: 1\n", "bogus"),
        ("agent_id: a1\nsite_id: [unclosed\n", "line"),
        (
            "agent_id: a1\nsite_id: S1\nsite_kind: pm\nmqtt: {ack_key_file: /nonexistent/ack}\n",
            "mqtt.ack_key_file: cannot read /nonexistent/ack",
        ),
        (
            "agent_id: a1\nsite_id: S1\nsite_kind: pm\n"
            "mqtt: {username: a1, password_file: /nonexistent/pw}\n",
            "mqtt.password_file: cannot read /nonexistent/pw: No such file or directory",
        ),
        (
            "agent_id: a1\nsite_id: S1\nsite_kind: pm\nmqtt: {tls: {ca_file: /nonexistent/ca}}\n",
            "mqtt.tls.ca_file: cannot read /nonexistent/ca",
        ),
        (
            "agent_id: a1\nsite_id: S1\nsite_kind: pm\n"
            "devices:\n"
            "  - {driver: gpio, id: c, profile: gpio-shelter-contacts, pins: {door: 17}}\n",
            "devices[c].pins",
        ),
    ],
)
def test_malformed_site_file_is_one_line_naming_file_and_path(
    tmp_path: Path, content: str, where: str
) -> None:
    site = tmp_path / "bad-site.yaml"
    site.write_text(content)
    result = run_cli("agent", "run", "--config", str(site))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(site) in lines[0]
    assert where in lines[0]
    assert "Traceback" not in result.stderr


def test_validate_reports_every_invalid_file_and_fails(tmp_path: Path) -> None:
    good = (
        Path(__file__).resolve().parents[2]
        / "firmware_config"
        / "sites"
        / "demo"
        / "nro-lyon-01.yaml"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent_id: UPPER\nsite_id: S1\nsite_kind: pm\n")
    result = run_cli("agent", "validate", str(good), str(bad))
    assert result.returncode == 1
    assert f"{bad}: agent_id:" in result.stderr
    assert str(good) not in result.stderr


def test_collector_refuses_an_http_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli(
            "collector",
            "run",
            "--db",
            f"sqlite:///{tmp_path / 'c.db'}",
            "--http",
            f"127.0.0.1:{port}",
        )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"shelterwatch: error: --http: port {port} on 127.0.0.1 is already in use"
    )


def test_demo_refuses_an_http_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli("demo", "--http-port", str(port), "--workdir", str(tmp_path / "demo"))
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_agent_command_imports_no_collector_dependencies() -> None:
    """What a Raspberry Pi runs must not need FastAPI or SQLAlchemy."""
    code = (
        "import sys, cli.main, cli.agent_cmd, agent.runtime, siteconfig.validate;"
        "bad = [m for m in ('fastapi', 'sqlalchemy', 'uvicorn', 'starlette') if m in sys.modules];"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_collector_refuses_an_ack_secret_that_is_not_one(tmp_path: Path) -> None:
    secret = tmp_path / "ack-secret"
    secret.write_text("not hex\n")
    result = run_cli(
        "collector",
        "run",
        "--db",
        f"sqlite:///{tmp_path / 'c.db'}",
        "--ack-secret-file",
        str(secret),
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"shelterwatch: error: --ack-secret-file: {secret}: expected 64 hex digits (32 bytes)"
    )


@pytest.mark.parametrize(
    ("file", "old", "new", "where"),
    [
        (
            "contracts/contracts.yaml",
            "gtr_min: {critical: 240, major: 480,",
            "gtr_min: {critical: soon, major: 480,",
            "contracts.curative-24x7.gtr_min.critical",
        ),
        ("contracts/contracts.yaml", "contracts:\n", "contracts: [\n", "line "),
        ("rules/alarm_rules.yaml", "transitions: 6", "transitions: many", "flapping.transitions"),
        ("contracts/alarm_criticality.yaml", "fire: critical", "fire: [critical", "line "),
    ],
)
def test_a_broken_data_file_stops_the_collector_in_one_line(
    tmp_path: Path, file: str, old: str, new: str, where: str
) -> None:
    """A broken contract or rules file stops the collector before anything starts, naming the
    file and the place in it, as the agent does for its site file."""
    data = tmp_path / "data"
    shutil.copytree(SHIPPED_DATA_DIR, data)
    text = (data / file).read_text()
    assert old in text
    (data / file).write_text(text.replace(old, new, 1))
    db = f"sqlite:///{tmp_path / 'c.db'}"
    result = run_cli(
        "collector", "run", "--db", db, "--http", f"127.0.0.1:{_free()}", "--data", str(data)
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(data / file) in lines[0] and where in lines[0]
    assert not (tmp_path / "c.db").exists()  # stopped before the database was touched


def _free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

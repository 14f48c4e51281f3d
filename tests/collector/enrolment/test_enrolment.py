"""``shelterwatch collector enrol-collector`` / ``enrol-agent``: what they write, with which
modes, what they refuse, and that a running broker takes an enrolment at once."""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cli.main import main
from collector.enrolment import dynsec
from collector.inventory.files import load_inventory, read_inventory
from collector.inventory.models import Agent
from collector.storage import make_engine, make_session_factory
from collector.storage.schema import create_schema
from protocol.acksig import derive_ack_key, read_key_file
from simulators.secured_broker import SecuredBroker

AGENT = ["--agent-id", "pm-enrol-1", "--site-id", "PM-ENR-1", "--site-kind", "pm"]
BROKER = ["--broker", "mqtt.noc.example:8883"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def enrol_collector(tmp_path: Path, *extra: str) -> int:
    out = ["--out", str(tmp_path / "collectors"), "--broker-dir", str(tmp_path / "broker")]
    return main(["collector", "enrol-collector", *out, *extra])


def test_enrol_collector_writes_the_broker_configuration_and_secrets_tightly(
    tmp_path: Path,
) -> None:
    assert enrol_collector(tmp_path, "--instance", "c1", "--instance", "c2") == 0
    collectors, broker = tmp_path / "collectors", tmp_path / "broker"
    modes = {p.name: _mode(p) for p in [*collectors.iterdir(), *broker.iterdir()]}
    assert modes == {
        "ack-secret": 0o600,
        "broker-admin-password": 0o600,
        "collector-c1-mqtt-password": 0o600,
        "collector-c2-mqtt-password": 0o600,
        "dynamic-security.json": 0o600,
        "shelterwatch.conf": 0o640,
    }
    assert _mode(broker) == 0o700 and _mode(collectors) == 0o700
    conf = (broker / "shelterwatch.conf").read_text().splitlines()
    plugin = dynsec.find_plugin()
    for line in (
        "allow_anonymous false",
        f"plugin {plugin}",
        f"plugin_opt_config_file {(broker / 'dynamic-security.json').resolve()}",
        "max_packet_size 263168",
        "max_queued_messages 20000",
        "max_inflight_messages 1000",
    ):
        assert line in conf
    state = json.loads((broker / "dynamic-security.json").read_text())
    clients = {c["username"]: c for c in state["clients"]}
    assert sorted(clients) == ["collector-c1", "collector-c2", "shelterwatch-admin"]
    assert clients["collector-c2"]["clientid"] == "collector-c2"
    password = (collectors / "collector-c2-mqtt-password").read_text().strip()
    assert dynsec.verify_password(clients["collector-c2"], password)
    assert len(read_key_file(collectors / "ack-secret")) == 32


@pytest.mark.skipif(
    os.geteuid() != 0 or not any(p.pw_name == "mosquitto" for p in pwd.getpwall()),
    reason="handing files to the broker's user needs root and a `mosquitto` user",
)
def test_the_broker_state_belongs_to_the_broker_user(tmp_path: Path) -> None:
    assert enrol_collector(tmp_path, "--instance", "c1") == 0
    broker_uid = pwd.getpwnam("mosquitto").pw_uid
    broker = tmp_path / "broker"
    owners = {p.name: p.stat().st_uid for p in [broker, *broker.iterdir()]}
    assert owners == {
        "broker": broker_uid,
        "dynamic-security.json": broker_uid,
        "shelterwatch.conf": 0,
    }
    assert (broker / "shelterwatch.conf").stat().st_gid == pwd.getpwnam("mosquitto").pw_gid


@pytest.fixture
def running(tmp_path: Path) -> Iterator[SecuredBroker]:
    broker = SecuredBroker(tmp_path / "secured", instances=["c1"])
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


def enrol_agent(broker: SecuredBroker, out: Path, *extra: str) -> int:
    return main(
        [
            "collector",
            "enrol-agent",
            *AGENT,
            *BROKER,
            "--out",
            str(out),
            "--collector-dir",
            str(broker.collector_dir),
            "--admin-broker",
            f"{broker.host}:{broker.port}",
            *extra,
        ]
    )


def _connects(broker: SecuredBroker, user: str, password: str, client_id: str) -> bool:
    """True when the broker accepts these credentials (its CONNACK, not a guess)."""
    answers: list[bool] = []
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(user, password)
    client.on_connect = lambda _c, _u, _f, rc, _p: answers.append(not rc.is_failure)
    client.connect(broker.host, broker.port)
    for _ in range(50):
        client.loop(timeout=0.1)
        if answers:
            break
    client.disconnect()
    assert answers, "no CONNACK"
    return answers[0]


def test_enrol_agent_writes_a_password_an_ack_key_and_a_site_file_the_agent_accepts(
    running: SecuredBroker, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert (
        enrol_agent(
            running,
            out,
            "--ca-file",
            "/etc/shelterwatch/ca.pem",
            "--collector-url",
            "https://noc.example",
        )
        == 0
    )
    assert {p.name: _mode(p) for p in out.iterdir()} == {
        "mqtt-password": 0o600,
        "ack-key": 0o600,
        "site.yaml": 0o644,
    }
    password = (out / "mqtt-password").read_text().strip()
    assert len(password) >= 40
    assert _connects(running, "pm-enrol-1", password, "agent-pm-enrol-1")  # no restart
    assert read_key_file(out / "ack-key") == derive_ack_key(running.ack_secret, "pm-enrol-1")
    validate = subprocess.run(
        [sys.executable, "-m", "cli", "agent", "validate", str(out / "site.yaml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert validate.returncode == 0, validate.stderr
    site = (out / "site.yaml").read_text()
    for line in (
        "username: pm-enrol-1",
        "password_file: /etc/shelterwatch/mqtt-password",
        "ack_key_file: /etc/shelterwatch/ack-key",
        "url: https://noc.example",
    ):
        assert line in site


def test_enrolling_an_agent_twice_is_refused_and_its_password_still_works(
    running: SecuredBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert enrol_agent(running, tmp_path / "first") == 0
    password = (tmp_path / "first" / "mqtt-password").read_text().strip()
    capsys.readouterr()
    # A fresh folder, so only the broker knows the agent already exists.
    assert enrol_agent(running, tmp_path / "second") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("shelterwatch: error: pm-enrol-1 is already enrolled on the broker")
    assert "--rotate" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "second").exists()
    assert _connects(running, "pm-enrol-1", password, "agent-pm-enrol-1")


def test_rotate_gives_a_new_password_and_keeps_the_edited_site_file(
    running: SecuredBroker, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert enrol_agent(running, out) == 0
    old = (out / "mqtt-password").read_text().strip()
    site = out / "site.yaml"
    site.write_text(site.read_text() + "# devices added on site\n")
    assert enrol_agent(running, out, "--rotate") == 0
    new = (out / "mqtt-password").read_text().strip()
    assert _connects(running, "pm-enrol-1", new, "agent-pm-enrol-1")
    assert not _connects(running, "pm-enrol-1", old, "agent-pm-enrol-1")
    assert site.read_text().endswith("# devices added on site\n")


@pytest.mark.parametrize(
    "agent_id", ["collector", "collector-c1", "collectors", "shelterwatch-admin"]
)
def test_reserved_ids_are_refused_in_one_line(
    running: SecuredBroker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    agent_id: str,
) -> None:
    c1 = running.collector("c1")
    assert enrol_agent(running, tmp_path / "out", "--agent-id", agent_id, "--rotate") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"shelterwatch: error: agent id {agent_id!r} is reserved")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert _connects(running, c1.username, c1.password, c1.client_id)  # untouched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rotate"], "pm-enrol-1 is not a client of the broker"),
        (["--agent-id", "Not An Id"], "invalid agent id"),
        (["--collector-url", "ftp://x"], "collector_api.url"),
    ],
)
def test_a_refused_enrolment_writes_nothing(
    running: SecuredBroker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    assert enrol_agent(running, tmp_path / "out", *args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_enrol_agent_without_the_running_broker_says_how_to_fix_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = SecuredBroker(tmp_path / "secured")  # enrolled, never started
    assert enrol_agent(broker, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert f"broker {broker.host}:{broker.port} unreachable" in err and "start it" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_enrol_collector_adds_an_instance_to_the_running_broker_once(
    running: SecuredBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "collector",
        "enrol-collector",
        "--out",
        str(running.collector_dir),
        "--broker-dir",
        str(running.broker_dir),
        "--admin-broker",
        f"{running.host}:{running.port}",
    ]
    secret = running.ack_secret
    assert main([*args, "--instance", "c3"]) == 0
    c3 = (running.collector_dir / "collector-c3-mqtt-password").read_text().strip()
    assert _connects(running, "collector-c3", c3, "collector-c3")
    assert running.ack_secret == secret  # every agent's key derives from it: never replaced
    capsys.readouterr()
    assert main([*args, "--instance", "c1"]) == 2
    assert "collector-c1 already enrolled" in capsys.readouterr().err
    c1 = running.collector("c1")
    assert _connects(running, c1.username, c1.password, c1.client_id)


def test_enrol_agent_binds_the_agent_to_its_site_in_the_inventory(
    running: SecuredBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "sites.yaml").write_text(
        "sites:\n  - {site_id: NRO-ENR-1, kind: nro}\n"
        "agents:\n  - {agent_id: nro-enrol-1, site_id: NRO-ENR-1}\n"
    )
    extra = ["--inventory", str(inventory), "--parent-nro", "NRO-ENR-1"]
    assert enrol_agent(running, tmp_path / "out", *extra) == 0
    assert "PUT /api/v1/agents/pm-enrol-1" in capsys.readouterr().out
    written = read_inventory(inventory / "enrolled.yaml")
    assert [(a.agent_id, a.site_id) for a in written.agents] == [("pm-enrol-1", "PM-ENR-1")]
    # The site was new: written beside its agent, as enrol-agent was told it.
    assert [(s.site_id, s.kind, s.parent_nro) for s in written.sites] == [
        ("PM-ENR-1", "pm", "NRO-ENR-1")
    ]
    # What the collector loads at start: the agent is bound, and only there.
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    create_schema(engine)
    with make_session_factory(engine)() as session:
        load_inventory(session, inventory)
        assert session.get(Agent, "pm-enrol-1").site_id == "PM-ENR-1"  # type: ignore[union-attr]
    engine.dispose()


def test_enrol_agent_refuses_to_move_an_agent_another_file_binds_before_touching_the_broker(
    running: SecuredBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "sites.yaml").write_text(
        "sites:\n  - {site_id: PM-ELSE, kind: pm}\n"
        "agents:\n  - {agent_id: pm-enrol-1, site_id: PM-ELSE}\n"
    )
    assert enrol_agent(running, tmp_path / "out", "--inventory", str(inventory)) == 2
    err = capsys.readouterr().err.strip()
    assert "bound to site PM-ELSE there, not PM-ENR-1" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (inventory / "enrolled.yaml").exists()
    # The broker was not touched: a first enrolment still goes through.
    assert enrol_agent(running, tmp_path / "out") == 0

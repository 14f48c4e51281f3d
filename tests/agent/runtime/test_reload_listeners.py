"""Hot reload while traps, syslog and pollers run, in a real agent process: a valid edit of
each section of the site file in turn, after which a trap sent by net-snmp's ``snmptrap`` and a
line sent by util-linux ``logger`` still raise and clear their alarms; an invalid edit (a typo,
a port another program holds) keeps the running configuration, its listeners still working,
with ``config_error`` in ``agent check``, in the heartbeat and at the collector, and the
``config_rejected`` alarm raised until the next accepted edit clears it."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from agent.runtime.status import read_status, status_socket_path
from protocol.topics import Channel, agent_topic
from simulators.devices.modbus import ModbusDeviceSimulator
from simulators.devices.snmp import free_udp_port
from simulators.stack import AgentProcess, Stack
from siteconfig import load_site
from siteconfig.profiles import ModbusProfile
from siteconfig.site import load_profile
from tests.agent.sensors.snmp.fixtures import COMMUNITY, Snmpd
from tests.conftest import wait_for

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"
SITE = "NRO-LYO-0100"
UPS_TRAPS = "1.3.6.1.2.1.33.2.0"
ALARM_DESCR = "1.3.6.1.2.1.33.1.6.2.1.2.1"
ON_BATTERY = "1.3.6.1.2.1.33.1.6.3.2"
TRAP_ALARM = ("ups-1", "output_source", "on_battery")
SYSLOG_ALARM = ("router-1", "fan", "fan_failure")
REJECTED_ALARM = ("agent", "config", "config_rejected")


@pytest.fixture
def sensor() -> Iterator[ModbusDeviceSimulator]:
    profile = load_profile(PROFILES / "modbus-env-sensor.yaml")
    assert isinstance(profile, ModbusProfile)
    simulator = ModbusDeviceSimulator(profile)
    simulator.start()
    simulator.set("temperature", 21.5)
    simulator.set("humidity", 40.0)
    yield simulator
    simulator.stop()


@pytest.fixture
def ups(tmp_path: Path) -> Iterator[Snmpd]:
    server = Snmpd(tmp_path / "snmpd")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def agent(stack: Stack, sensor: ModbusDeviceSimulator, ups: Snmpd, tmp_path: Path) -> AgentProcess:
    site = {
        "agent_id": "reload-nro-0100",
        "site_id": SITE,
        "site_kind": "nro",
        "profiles_dir": str(PROFILES),
        "mqtt": {"host": "127.0.0.1", "port": 1883, "heartbeat_s": 1},
        "outbox": {"path": "/unused"},
        "devices": [
            {
                "driver": "gpio",
                "id": "contacts",
                "profile": "gpio-shelter-contacts",
                "pins": {"door": 17, "fire": 27, "hvac_fault": 22, "mains_present": 23},
            },
            {
                "driver": "modbus",
                "id": "env-1",
                "profile": "modbus-env-sensor",
                "transport": {"kind": "tcp", "host": "127.0.0.1", "port": sensor.port},
                "poll_s": 0.5,
            },
            {
                "driver": "snmp",
                "id": "ups-1",
                "profile": "snmp-ups-mib",
                "host": "127.0.0.1",
                "port": ups.port,
                "auth": {"version": "v2c", "community": COMMUNITY},
                # Slow: a trap-raised alarm is then not reconciled by a poll mid-check.
                "poll_s": 30,
            },
        ],
        "traps": {"bind": "127.0.0.1", "port": free_udp_port(), "communities": ["public"]},
        "syslog": {
            "bind": "127.0.0.1",
            "port": free_udp_port(),
            "patterns": [
                _pattern("FAN_FAIL", "raised"),
                _pattern("FAN_OK", "cleared"),
            ],
        },
    }
    path = tmp_path / "reload-nro-0100.yaml"
    path.write_text(yaml.safe_dump(site))
    started = stack.add_agent(path)
    wait_for("the agent's status socket", lambda: _polled(started))
    return started


def _pattern(regex: str, transition: str) -> dict[str, str]:
    return {
        "regex": regex,
        "equipment": "router-1",
        "point": "fan",
        "alarm_type": "fan_failure",
        "severity": "major",
        "transition": transition,
    }


def _status(agent: AgentProcess) -> dict[str, Any]:
    return read_status(status_socket_path(agent.outbox_path))


def _polled(agent: AgentProcess) -> bool:
    """Every device's (possibly restarted) poller answered at least once."""
    try:
        devices = _status(agent)["devices"]
    except OSError:
        return False
    return len(devices) == 3 and all(d["polls_ok"] >= 1 for d in devices)


def _active(agent: AgentProcess) -> set[tuple[str, str, str]]:
    return {
        (a["equipment_id"], a["point"], a["alarm_type"]) for a in _status(agent)["active_alarms"]
    }


def _edit(agent: AgentProcess, change: Callable[[dict[str, Any]], None]) -> None:
    raw = yaml.safe_load(agent.site_file.read_text())
    change(raw)
    agent.site_file.write_text(yaml.safe_dump(raw))


def _applied(stack: Stack, agent: AgentProcess) -> None:
    """Wait until the file's configuration runs, its pollers polled, and nothing is refused."""
    wanted = load_site(agent.site_file).config_hash
    wait_for("the new configuration", lambda: _status(agent)["config_hash"] == wanted)
    wait_for("every poller polled", lambda: _polled(agent))
    assert _status(agent)["config_error"] is None
    assert REJECTED_ALARM not in _active(agent)


def _config(agent: AgentProcess) -> dict[str, Any]:
    return dict(yaml.safe_load(agent.site_file.read_text()))


def _trap(ups: Snmpd, agent: AgentProcess, trap: int, community: str = "public") -> None:
    ups.send_trap(
        target_port=_config(agent)["traps"]["port"],
        trap_oid=f"{UPS_TRAPS}.{trap}",
        varbinds=[(ALARM_DESCR, "o", ON_BATTERY)],
        community=community,
    )


def _syslog(agent: AgentProcess, text: str) -> None:
    port = _config(agent)["syslog"]["port"]
    subprocess.run(
        ["logger", "--rfc3164", "-d", "-n", "127.0.0.1", "-P", str(port), "-t", "envmon", text],
        check=True,
    )


def _listeners_work(ups: Snmpd, agent: AgentProcess, community: str = "public") -> None:
    """A trap and a syslog line raise their alarms; their clearing ones clear them."""
    _trap(ups, agent, 3, community)
    wait_for("the trap's alarm", lambda: TRAP_ALARM in _active(agent))
    _trap(ups, agent, 4, community)
    wait_for("the trap's clear", lambda: TRAP_ALARM not in _active(agent))
    _syslog(agent, "FAN_FAIL tray 2")
    wait_for("the syslog alarm", lambda: SYSLOG_ALARM in _active(agent))
    _syslog(agent, "FAN_OK tray 2")
    wait_for("the syslog clear", lambda: SYSLOG_ALARM not in _active(agent))


def _heartbeat(stack: Stack, agent: AgentProcess) -> dict[str, Any]:
    """The next heartbeat the agent publishes."""
    got: list[dict[str, Any]] = []
    arrived = threading.Event()

    def on_message(client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        got.append(json.loads(message.payload))
        arrived.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.connect("127.0.0.1", stack.broker.port)
    client.subscribe(agent_topic(agent.agent_id, Channel.HEARTBEAT), qos=0)
    client.loop_start()
    try:
        assert arrived.wait(10), "no heartbeat"
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0]


EDITS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("a snmp device's poll_s", lambda raw: raw["devices"][2].update(poll_s=31)),
    ("a modbus device's poll_s", lambda raw: raw["devices"][1].update(poll_s=0.6)),
    ("a gpio device's pin", lambda raw: raw["devices"][0]["pins"].update(hvac_fault=24)),
    ("traps: one more community", lambda raw: raw["traps"]["communities"].append("private")),
    ("traps: another port", lambda raw: raw["traps"].update(port=free_udp_port())),
    (
        "syslog: one more pattern",
        lambda raw: raw["syslog"]["patterns"].append(_pattern("FAN_GONE", "raised")),
    ),
    ("syslog: another port", lambda raw: raw["syslog"].update(port=free_udp_port())),
    ("the region", lambda raw: raw.update(region="Auvergne-Rhone-Alpes")),
]


def test_every_section_reloads_and_the_listeners_keep_working(
    stack: Stack, agent: AgentProcess, ups: Snmpd
) -> None:
    pid = agent.process.pid
    _listeners_work(ups, agent)
    for what, change in EDITS:
        _edit(agent, change)
        _applied(stack, agent)
        try:
            _listeners_work(ups, agent)
        except AssertionError as err:
            raise AssertionError(f"after editing {what}: {err}") from err
    _listeners_work(ups, agent, community="private")
    assert agent.process.pid == pid and agent.process.running


def test_a_refused_edit_keeps_the_running_listeners_and_is_reported(
    stack: Stack, agent: AgentProcess, ups: Snmpd
) -> None:
    running = _status(agent)["config_hash"]
    listening = _config(agent)["syslog"]["port"]
    # A syslog port another program holds: valid as a file, impossible to bind.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        taken = squatter.getsockname()[1]
        _edit(agent, lambda raw: raw["syslog"].update(port=taken))
        error = wait_for("the refusal", lambda: _status(agent)["config_error"])
        assert error.startswith("file change: OSError") and "in use" in error
        # The file says the taken port; the agent still listens where it did.
        _edit(agent, lambda raw: raw["syslog"].update(port=listening))
    wait_for("the revert accepted", lambda: _status(agent)["config_error"] is None)
    assert _status(agent)["config_hash"] == running
    _listeners_work(ups, agent)

    # A typo: the old configuration keeps running, and everyone is told.
    _edit(agent, lambda raw: raw["traps"].update(communitees=["x"]))
    error = wait_for("the refusal", lambda: _status(agent)["config_error"])
    assert "traps.communitees: Extra inputs are not permitted" in error
    assert _status(agent)["config_hash"] == running
    assert REJECTED_ALARM in _active(agent)
    beat = _heartbeat(stack, agent)
    assert "traps.communitees" in (beat.get("config_error") or "")
    # The listeners, where they still listen, in the heartbeat and in agent check.
    where = {h["kind"]: h["port"] for h in beat["listeners"]}
    assert where == {"snmp_traps": _config(agent)["traps"]["port"], "syslog": listening}
    assert {h["kind"] for h in _status(agent)["listeners"]} == {"snmp_traps", "syslog"}
    view = wait_for(
        "the refusal at the collector",
        lambda: stack.api("GET", f"/api/v1/sites/{SITE}/agent").json().get("config_error"),
    )
    assert "traps.communitees" in view
    _listeners_work(ups, agent)

    # The next valid edit is applied, and clears the error and the alarm.
    def fixed(raw: dict[str, Any]) -> None:
        raw["traps"].pop("communitees")
        raw["devices"][2]["poll_s"] = 29

    _edit(agent, fixed)
    _applied(stack, agent)
    assert _heartbeat(stack, agent).get("config_error") is None
    _listeners_work(ups, agent)

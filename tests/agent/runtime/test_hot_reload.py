"""Hot reload of a running agent process, seen as the NOC and a technician see it: a file
change, SIGHUP and a configuration pushed by the collector are applied without a restart; an
invalid one keeps the running configuration and is reported with its file and reason; only the
devices whose definition changed are restarted; the outbox stream and the MQTT session are
untouched."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from agent.runtime.status import read_status, status_socket_path
from protocol import ConfigMessage, encode
from protocol.topics import Channel, agent_topic
from simulators.devices.modbus import ModbusDeviceSimulator
from simulators.stack import AgentProcess, Stack
from siteconfig import ConfigError, load_site
from siteconfig.profiles import ModbusProfile
from siteconfig.site import load_profile
from tests.conftest import wait_for

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"
SITE = "PM-LYO-0101"


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
def agent(stack: Stack, sensor: ModbusDeviceSimulator, tmp_path: Path) -> AgentProcess:
    site = {
        "agent_id": "reload-pm-0101",
        "site_id": SITE,
        "site_kind": "pm",
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
        ],
    }
    path = tmp_path / "reload-pm-0101.yaml"
    path.write_text(yaml.safe_dump(site))
    started = stack.add_agent(path)
    stack.wait_for_gpio(started.agent_id)
    wait_for("the agent's first heartbeat", lambda: _agent_view(stack).get("config_hash"))
    return started


def _agent_view(stack: Stack) -> dict[str, Any]:
    response = stack.api("GET", f"/api/v1/sites/{SITE}/agent")
    return response.json() if response.status_code == 200 else {}


def _status(agent: AgentProcess) -> dict[str, Any]:
    return read_status(status_socket_path(agent.outbox_path))


def _polls(agent: AgentProcess) -> dict[str, int]:
    return {d["device_id"]: d["polls_ok"] for d in _status(agent)["devices"]}


def _edit(agent: AgentProcess, change: Any, *, keep_mtime: bool = False) -> str:
    """Rewrite the agent's site file through ``change(raw)``; returns the new config hash."""
    before = agent.site_file.stat()
    raw = yaml.safe_load(agent.site_file.read_text())
    change(raw)
    agent.site_file.write_text(yaml.safe_dump(raw))
    if keep_mtime:  # so only a SIGHUP can make the agent look at the file
        os.utime(agent.site_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    try:
        return load_site(agent.site_file).config_hash
    except ConfigError:
        return ""  # the agent must refuse it too


def _log(agent: AgentProcess) -> str:
    return agent.process.log_path.read_text()


def test_a_file_change_restarts_only_the_changed_device(stack: Stack, agent: AgentProcess) -> None:
    pid, stream = agent.process.pid, _status(agent)["stream_id"]
    boot = _agent_view(stack)["boot"]
    wait_for("ten polls of the sensor", lambda: _polls(agent)["env-1"] >= 10)
    before = _polls(agent)

    def slower_sensor(raw: dict[str, Any]) -> None:
        raw["devices"][1]["poll_s"] = 0.7

    new_hash = _edit(agent, slower_sensor)
    wait_for("the new hash at the collector", lambda: _agent_view(stack)["config_hash"] == new_hash)
    polls = _polls(agent)
    assert polls["env-1"] < before["env-1"]  # restarted: its counters began again
    assert polls["contacts"] > before["contacts"]  # untouched: still counting from before
    # Not a restart: same process, same boot, same outbox stream, no new MQTT session.
    assert agent.process.pid == pid and agent.process.running
    assert _agent_view(stack)["boot"] == boot
    assert _status(agent)["stream_id"] == stream
    assert _log(agent).count("connected to broker; birth published") == 1
    assert "applied from file change" in _log(agent)


def test_an_invalid_file_keeps_the_running_config_and_is_reported(
    stack: Stack, agent: AgentProcess
) -> None:
    running = _agent_view(stack)["config_hash"]

    def typo(raw: dict[str, Any]) -> None:
        raw["devices"][1]["pol_s"] = 5

    _edit(agent, typo)
    error = wait_for("the refusal at the collector", lambda: _agent_view(stack)["config_error"])
    assert error.startswith("file change:")
    assert f"{agent.site_file}: devices[env-1].pol_s: Extra inputs are not permitted" in error
    assert _agent_view(stack)["config_hash"] == running
    # The old configuration still runs: a door opening is still an alarm.
    stack.set_contact(agent.agent_id, "door", alarm=True)
    wait_for(
        "the door alarm",
        lambda: stack.api("GET", f"/api/v1/alarms?site_id={SITE}&alarm_type=door_open").json()[
            "items"
        ],
    )
    # A valid file afterwards is applied and the error goes away.
    new_hash = _edit(agent, lambda raw: raw["devices"][1].pop("pol_s"))
    assert new_hash == running  # back to the very same content
    _edit(agent, lambda raw: raw["devices"][1].update(poll_s=0.6))
    wait_for("the error cleared", lambda: _agent_view(stack)["config_error"] is None)


def test_sighup_reloads_the_file(stack: Stack, agent: AgentProcess) -> None:
    new_hash = _edit(agent, lambda raw: raw.update(region="Bretagne"), keep_mtime=True)
    assert agent.process.pid is not None
    os.kill(agent.process.pid, signal.SIGHUP)
    wait_for("the new hash at the collector", lambda: _agent_view(stack)["config_hash"] == new_hash)
    assert "applied from SIGHUP" in _log(agent)


def test_a_config_pushed_by_the_collector_is_applied_or_refused(
    stack: Stack, agent: AgentProcess
) -> None:
    raw = yaml.safe_load(agent.site_file.read_text())
    raw["region"] = "Occitanie"
    profiles = {
        name: (PROFILES / f"{name}.yaml").read_text()
        for name in ("gpio-shelter-contacts", "modbus-env-sensor")
    }
    raw.pop("profiles_dir")
    good = yaml.safe_dump(raw)
    _push(stack, agent, site_yaml=good, profiles=profiles)
    wait_for(
        "the pushed config applied",
        lambda: "applied from collector push" in _log(agent),
    )
    applied = _agent_view(stack)["config_hash"]
    raw["devices"][0]["pins"]["door"] = "seventeen"
    _push(stack, agent, site_yaml=yaml.safe_dump(raw), profiles=profiles)
    error = wait_for("the refusal at the collector", lambda: _agent_view(stack)["config_error"])
    assert error.startswith("collector push") and "devices[contacts].pins.door" in error
    assert _agent_view(stack)["config_hash"] == applied


def _push(stack: Stack, agent: AgentProcess, *, site_yaml: str, profiles: dict[str, str]) -> None:
    message = ConfigMessage(
        agent_id=agent.agent_id,
        config_hash="sha256:" + "0" * 40,
        site_yaml=site_yaml,
        profiles_yaml=profiles,
    )
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", stack.broker.port)
    client.loop_start()
    try:
        info = client.publish(
            agent_topic(agent.agent_id, Channel.CONFIG), encode(message), qos=1, retain=True
        )
        info.wait_for_publish(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()

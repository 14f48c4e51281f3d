"""The SNMP poller against a real net-snmp snmpd (v2c and v3 authPriv SHA/AES), through the
shipped UPS-MIB profile, and through SensingService for alarms and comm failure."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.sensing import SensingService
from agent.sensors import DeviceError, SnmpReader
from clocks import SystemClock
from siteconfig import ConfigError, SiteConfig, load_profile, load_profile_text, load_site_text
from siteconfig.profiles import SnmpProfile
from siteconfig.site import SnmpDevice, SnmpV3
from tests.agent.sensors.recording import RecordingSink, until
from tests.agent.sensors.snmp.fixtures import (
    COMMUNITY,
    UPS,
    V3_AUTH,
    V3_PRIV,
    V3_USER,
    Snmpd,
)

PROFILES = Path(__file__).resolve().parents[4] / "firmware_config" / "profiles"

EXPECTED = {
    "battery_status": 2.0,
    "seconds_on_battery": 0.0,
    "minutes_remaining": 42.0,
    "charge_remaining": 97.0,
    "battery_temperature": 27.0,
    "input_voltage.1": 231.0,
    "input_voltage.2": 229.0,
    "output_source": 3.0,
    "alarms_present": 0.0,
}


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    server = Snmpd(tmp_path_factory.mktemp("snmpd"))
    server.start()
    yield server
    server.stop()


def ups_profile() -> SnmpProfile:
    loaded = load_profile(PROFILES / "snmp-ups-mib.yaml")
    assert isinstance(loaded, SnmpProfile)
    return loaded


def device(port: int, auth: dict[str, Any], **kw: Any) -> SnmpDevice:
    return SnmpDevice.model_validate(
        {
            "driver": "snmp",
            "id": "ups-1",
            "profile": "snmp-ups-mib",
            "host": "127.0.0.1",
            "port": port,
            "auth": auth,
            "timeout_s": 0.5,
            "poll_s": 0.05,
            "retries": 0,
            "comm_failure_after": 2,
            "backoff_max_s": 0.1,
            "max_repetitions": 1,  # several GETBULK round trips for the two-row table
            **kw,
        }
    )


V2C = {"version": "v2c", "community": COMMUNITY}
V3 = {"version": "v3", "user": V3_USER, "auth_key": V3_AUTH, "priv_key": V3_PRIV}


@pytest.mark.parametrize("auth", [V2C, V3], ids=["v2c", "v3-authpriv"])
async def test_reads_scalars_and_walks_the_table(snmpd: Snmpd, auth: dict[str, Any]) -> None:
    reader = SnmpReader(device(snmpd.port, auth), ups_profile())
    try:
        assert await reader.read() == EXPECTED
    finally:
        reader.close()


async def test_scale_and_offset_are_applied(snmpd: Snmpd) -> None:
    profile = SnmpProfile.model_validate(
        {
            "name": "scaled",
            "kind": "snmp",
            "points": {
                "temp_f": {"oid": f"{UPS}.1.2.7.0", "scale": 1.8, "offset": 32},
                "volts": {"oid": f"{UPS}.1.3.3.1.3", "table": True, "scale": 0.1},
            },
        }
    )
    reader = SnmpReader(device(snmpd.port, V2C), profile)
    try:
        values = await reader.read()
    finally:
        reader.close()
    assert values["temp_f"] == pytest.approx(80.6)
    assert values["volts.1"] == pytest.approx(23.1)
    assert values["volts.2"] == pytest.approx(22.9)


@pytest.mark.parametrize(
    ("auth", "error"),
    [
        ({**V3, "priv_key": "wrong-priv-key"}, "no answer within 0.5 s .* wrong v3 privacy key"),
        ({**V3, "auth_key": "wrong-auth-key"}, "Wrong SNMP PDU digest"),
        ({**V3, "user": "nobody"}, "Unknown USM user"),
        ({**V2C, "community": "not-the-community"}, "no answer .* wrong community"),
    ],
    ids=["v3-wrong-priv", "v3-wrong-auth", "v3-unknown-user", "v2c-wrong-community"],
)
async def test_wrong_credentials_are_a_clear_device_error(
    snmpd: Snmpd, auth: dict[str, Any], error: str
) -> None:
    reader = SnmpReader(device(snmpd.port, auth), ups_profile())
    try:
        with pytest.raises(DeviceError, match=f"^snmp 127.0.0.1:{snmpd.port}: {error}"):
            await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        reader.close()


async def test_alarms_and_a_dead_device_through_sensing(snmpd: Snmpd) -> None:
    """OIDs reach evaluation (an enumerated value, a threshold; the hysteresis band and the
    delays are checked at their exact boundaries in ``tests/agent/evaluation``); snmpd gone
    raises comm_failure, back clears it."""
    profile = ups_profile()
    dev = device(snmpd.port, V3)
    config = SiteConfig.model_validate(
        {
            "agent_id": "t1",
            "site_id": "S1",
            "site_kind": "nro",
            "devices": [dev.model_dump()],
            "profiles": {"snmp-ups-mib": profile.model_dump()},
        }
    )
    sink = RecordingSink()
    service = SensingService(config=config, sink=sink, clock=SystemClock())
    async with service:
        await until(
            lambda: {s.point for s in sink.batches} >= {"input_voltage.1", "input_voltage.2"}
        )
        assert {s.point: s.value for s in sink.batches}["input_voltage.2"] == 229.0
        snmpd.set(f"{UPS}.1.4.1.0", "5")  # output source: battery
        snmpd.set(f"{UPS}.1.2.3.0", "8")  # 8 min left: below 10
        await until(lambda: sink.of("on_battery") == ["raised"])
        await until(lambda: sink.of("battery_autonomy_low") == ["raised"])
        snmpd.set(f"{UPS}.1.4.1.0", "3")
        snmpd.set(f"{UPS}.1.2.3.0", "16")
        await until(lambda: sink.of("on_battery") == ["raised", "cleared"])
        await until(lambda: sink.of("battery_autonomy_low") == ["raised", "cleared"])
        raised = next(t for t in sink.transitions if t.alarm_type == "on_battery")
        assert (raised.equipment_id, raised.point, raised.value) == ("ups-1", "output_source", 5.0)

        snmpd.stop()
        await until(lambda: sink.of("comm_failure") == ["raised"])
        [health] = service.device_health()
        assert not health.ok and health.consecutive_failures >= 2
        assert health.last_error is not None and str(snmpd.port) in health.last_error
        snmpd.start()
        await until(lambda: sink.of("comm_failure") == ["raised", "cleared"])
        [health] = service.device_health()
        assert health.ok and health.last_error is None


@pytest.mark.parametrize(
    ("patch", "path", "reason"),
    [
        (
            {"oid": "1.3.6.1.2.1.33.x"},
            "points.p.oid",
            "expected a numeric OID such as 1.3.6.1.2.1.33.1.2.1.0; got '1.3.6.1.2.1.33.x'",
        ),
        (
            {"alarm": {"alarm_type": "a", "severity": "major", "equals": []}},
            "points.p.alarm.direction",
            "",
        ),
        ({"type": "string", "telemetry": {}}, "points.p", "a string point carries no alarm"),
    ],
)
def test_profile_errors_say_file_path_and_reason(
    patch: dict[str, Any], path: str, reason: str
) -> None:
    point = {"oid": "1.3.6.1.2.1.33.1.2.1.0", **patch}
    text = f"name: p\nkind: snmp\npoints:\n  p: {point!r}\n".replace("'", '"')
    with pytest.raises(ConfigError) as err:
        load_profile_text(text, source="p.yaml")
    assert str(err.value).startswith(f"p.yaml: {path}")
    assert reason in str(err.value)


SITE = """
agent_id: t1
site_id: S1
site_kind: nro
devices:
  - driver: snmp
    id: ups-1
    profile: snmp-ups-mib
    host: 192.0.2.10
    auth: {version: v3, user: u, auth_key: auth-key-1, priv_key: priv-key-1}
"""


def test_site_with_snmp_device_traps_and_syslog_loads() -> None:
    text = SITE + (
        "traps: {port: 1162, communities: [public], sources: {192.0.2.11: ups-1}}\n"
        "syslog: {patterns: [{regex: 'FAN.*FAIL', equipment: r1, point: fan,"
        " alarm_type: hvac_fault, severity: minor, transition: raised, expire_s: 600}]}\n"
    )
    site = load_site_text(text, source="site.yaml")
    [dev] = site.devices
    assert isinstance(dev, SnmpDevice) and dev.port == 161 and dev.max_repetitions == 10
    assert isinstance(site.profile_of(dev), SnmpProfile)
    assert site.traps is not None and site.traps.sources == {"192.0.2.11": "ups-1"}


@pytest.mark.parametrize(
    ("extra", "path", "reason"),
    [
        ("traps: {sources: {192.0.2.11: nope}}\n", "<root>", "traps.sources name no snmp device"),
        ("traps: {port: 70000}\n", "traps.port", "less than or equal to 65535"),
        (
            "syslog: {patterns: [{regex: '(', equipment: r, point: p, alarm_type: a,"
            " severity: minor, transition: raised}]}\n",
            "syslog.patterns[0]",
            "regex does not compile",
        ),
        (
            "syslog: {patterns: [{regex: 'FAN', equipment: r, point: p, alarm_type: a,"
            " severity: minor, transition: raised}]}\n",
            "syslog.patterns[0]",
            "raises a on r p, which nothing clears",
        ),
    ],
)
def test_site_errors_say_file_path_and_reason(extra: str, path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_site_text(SITE + extra, source="site.yaml")
    assert str(err.value).startswith(f"site.yaml: {path}: ")
    assert reason in str(err.value)


def test_v3_device_without_priv_key_is_refused() -> None:
    text = SITE.replace(", priv_key: priv-key-1", "")
    with pytest.raises(ConfigError, match=r"^site.yaml: devices\[ups-1\]\.auth\.priv_key: "):
        load_site_text(text, source="site.yaml")


def test_v3_keys_may_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "auth").write_text("auth-from-file\n")
    (tmp_path / "priv").write_text("priv-from-file\n")
    text = SITE.replace(
        "auth_key: auth-key-1, priv_key: priv-key-1",
        f"auth_key_file: {tmp_path / 'auth'}, priv_key_file: {tmp_path / 'priv'}",
    )
    [dev] = load_site_text(text, source="site.yaml").devices
    assert isinstance(dev, SnmpDevice) and isinstance(dev.auth, SnmpV3)
    assert (dev.auth.auth_key, dev.auth.priv_key) == ("auth-from-file", "priv-from-file")


def test_a_missing_key_file_names_the_file(tmp_path: Path) -> None:
    text = SITE.replace("priv_key: priv-key-1", f"priv_key_file: {tmp_path / 'nope'}")
    with pytest.raises(ConfigError) as err:
        load_site_text(text, source="site.yaml")
    assert str(err.value).startswith("site.yaml: devices[ups-1].auth: ")
    assert f"cannot read priv_key_file {tmp_path / 'nope'}: No such file" in str(err.value)


def test_v3_without_cryptography_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    # pysnmp would otherwise drop authPriv traffic without a word.
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "cryptography" else real(name, *a),
    )
    with pytest.raises(ConfigError, match=r"^site.yaml: devices\[ups-1\]\.auth: .*cryptography"):
        load_site_text(SITE, source="site.yaml")

"""Network equipment over IF-MIB, against net-snmp's snmpd: an interface down while
administratively up raises interface_down on its row, and its return clears it; one shut on
purpose raises nothing; traffic counters become rates per second."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sensing import SensingService
from clocks import SystemClock
from simulators.devices.snmp import COMMUNITY, SnmpDeviceSimulator, normal_values
from siteconfig import SiteConfig
from siteconfig.errors import ConfigError
from siteconfig.profiles import EqualsAlarm, SnmpProfile
from siteconfig.site import load_profile, load_profile_text
from tests.agent.sensors.recording import RecordingSink, until

PROFILE = Path(__file__).resolve().parents[4] / "firmware_config" / "profiles" / "snmp-if-mib.yaml"


def _profile(*, raise_delay_s: float = 0.0) -> SnmpProfile:
    loaded = load_profile(PROFILE)
    assert isinstance(loaded, SnmpProfile)
    oper = loaded.points["oper_status"]
    assert isinstance(oper.alarm, EqualsAlarm)
    quick = oper.model_copy(
        update={"alarm": oper.alarm.model_copy(update={"raise_delay_s": raise_delay_s})}
    )
    return loaded.model_copy(update={"points": {**loaded.points, "oper_status": quick}})


def _site(port: int, profile: SnmpProfile, *, poll_s: float) -> SiteConfig:
    """An NRO whose one OLT is polled over v2c at ``port`` with ``profile``."""
    return SiteConfig.model_validate(
        {
            "agent_id": "nro-1",
            "site_id": "NRO-1",
            "site_kind": "nro",
            "devices": [
                {
                    "driver": "snmp",
                    "id": "olt-1",
                    "profile": "snmp-if-mib",
                    "host": "127.0.0.1",
                    "port": port,
                    "auth": {"version": "v2c", "community": COMMUNITY},
                    "poll_s": poll_s,
                    "timeout_s": 1.0,
                }
            ],
            "profiles": {"snmp-if-mib": profile.model_dump()},
        }
    )


@pytest.fixture
def olt(tmp_path: Path) -> Iterator[SnmpDeviceSimulator]:
    simulator = SnmpDeviceSimulator(_profile(), tmp_path / "olt")
    simulator.start()
    yield simulator
    simulator.stop()


async def test_interface_down_only_when_administratively_up_and_traffic_as_rates(
    olt: SnmpDeviceSimulator,
) -> None:
    config = _site(olt.port, _profile(), poll_s=0.2)
    sink = RecordingSink()
    olt.set("in_bits.1", 5_000_000)  # octets, as the counter holds them
    async with SensingService(config=config, sink=sink, clock=SystemClock()):
        olt.set("admin_status.1", 2)  # port 1 shut on purpose...
        olt.set("oper_status.1", 2)  # ...so its being down is no alarm
        olt.set("oper_status.2", 2)  # port 2 is up administratively and down: an outage
        await until(lambda: sink.by_point("interface_down") == [("oper_status.2", "raised")])
        olt.set("in_bits.1", 5_250_000)  # 250,000 octets more: 2,000,000 bits over the interval
        await until(lambda: any(s.point == "in_bits.1" and s.value > 0 for s in sink.batches))
        olt.set("oper_status.2", 1)
        await until(
            lambda: (
                sink.by_point("interface_down")
                == [("oper_status.2", "raised"), ("oper_status.2", "cleared")]
            )
        )
    raised = next(t for t in sink.transitions if t.alarm_type == "interface_down")
    assert (raised.equipment_id, raised.severity.value, raised.value) == ("olt-1", "major", 2.0)
    rate = next(s for s in sink.batches if s.point == "in_bits.1" and s.value > 0)
    assert rate.unit == "bit/s"
    # 2,000,000 bits between two polls at least 0.2 s apart: at most 10 Mbit/s, far from the
    # counter itself (42,000,000 bits).
    assert 0 < rate.value <= 10_000_000


def test_a_condition_must_name_a_point_of_the_same_shape() -> None:
    text = PROFILE.read_text().replace("point: admin_status", "point: admin_state")
    with pytest.raises(ConfigError, match="only_if: no point 'admin_state'"):
        load_profile_text(text, source="snmp-if-mib.yaml")
    with pytest.raises(ConfigError, match="rate applies to counters only"):
        load_profile_text(
            PROFILE.read_text().replace("type: counter", "type: gauge", 1), source="p.yaml"
        )


IF_X_TABLE = "1.3.6.1.2.1.31."  # the 64-bit counters, which some equipment does not serve


@pytest.mark.parametrize(
    ("served", "unknown"),
    [("minimal", ["in_bits", "out_bits"]), ("full", [])],
)
async def test_an_equipment_serving_the_iftable_only_or_everything(
    tmp_path: Path, served: str, unknown: list[str]
) -> None:
    """Against a peer serving only the ifTable columns and one serving the ifXTable too: the
    absent counters are unknown points, never a failure, and the outage alarm works on both."""
    profile = _profile()
    values = normal_values(profile)
    if served == "minimal":
        values = {oid: v for oid, v in values.items() if not oid.startswith(IF_X_TABLE)}
    olt = SnmpDeviceSimulator(profile, tmp_path / "olt", values=values)
    olt.start()
    config = _site(olt.port, profile, poll_s=0.1)
    sink = RecordingSink()
    try:
        async with SensingService(config=config, sink=sink, clock=SystemClock()) as service:
            await until(lambda: service.device_health()[0].polls_ok >= 3)
            health = service.device_health()[0]
            assert (health.ok, health.polls_failed) == (True, 0)
            assert health.points_unknown == unknown
            assert sink.transitions == []  # neither comm_failure nor profile_mismatch
            olt.set("oper_status.1", 2)
            await until(lambda: sink.by_point("interface_down") == [("oper_status.1", "raised")])
            olt.set("oper_status.1", 1)
            await until(lambda: len(sink.by_point("interface_down")) == 2)
    finally:
        olt.stop()
    assert sink.by_point("interface_down")[-1] == ("oper_status.1", "cleared")

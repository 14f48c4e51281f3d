"""What an SNMP notification or a syslog message means: the alarm transition the site's
profiles and patterns make of it, or why it means nothing."""

from __future__ import annotations

from pathlib import Path

from agent.evaluation import SyslogEvaluator, TrapEvaluator, TrapSource, Unmapped, match_trap
from agent.sensors.observations import SNMP_TRAP_OID, SyslogMessage, TrapNotification
from clocks import ManualClock
from siteconfig import SnmpDevice, SnmpProfile, SyslogPattern, load_profile

PROFILES = Path(__file__).resolve().parents[3] / "firmware_config" / "profiles"
UPS_TRAPS = "1.3.6.1.2.1.33.2.0"
TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
ALARM_DESCR = "1.3.6.1.2.1.33.1.6.2.1.2"
ON_BATTERY = "1.3.6.1.2.1.33.1.6.3.2"


def ups_profile() -> SnmpProfile:
    loaded = load_profile(PROFILES / "snmp-ups-mib.yaml")
    assert isinstance(loaded, SnmpProfile)
    return loaded


def test_match_trap_needs_the_varbind_condition() -> None:
    traps = ups_profile().traps
    added = [(TRAP_OID, f"{UPS_TRAPS}.3")]
    assert match_trap(traps, added) is None
    hit = match_trap(traps, [*added, (f"{ALARM_DESCR}.7", ON_BATTERY)])
    assert hit is not None and hit.transition == "raised"
    assert match_trap(traps, [*added, (f"{ALARM_DESCR}.7", "1.3.6.1.2.1.33.1.6.3.3")]) is None


def test_a_notification_means_what_its_senders_profile_says(clock: ManualClock) -> None:
    ups = SnmpDevice.model_validate(
        {
            "driver": "snmp",
            "id": "ups-1",
            "profile": "snmp-ups-mib",
            "host": "10.0.0.5",
            "auth": {"version": "v2c", "community": "public"},
        }
    )
    evaluator = TrapEvaluator(
        [TrapSource(device=ups, profile=ups_profile())], addresses={"10.0.0.99": "ups-1"}
    )

    def hear(host: str, trap_oid: str) -> object:
        notification = TrapNotification(host=host, var_binds=((SNMP_TRAP_OID, trap_oid),))
        return evaluator.feed(notification, now=clock.now())

    on_battery = hear("10.0.0.5", f"{UPS_TRAPS}.1")
    assert not isinstance(on_battery, Unmapped)
    assert (on_battery.equipment_id, on_battery.point, on_battery.alarm_type) == (
        "ups-1",
        "output_source",
        "on_battery",
    )
    assert (on_battery.transition.value, on_battery.reason, on_battery.ts) == (
        "raised",
        f"snmp trap {UPS_TRAPS}.1 from 10.0.0.5",
        clock.now(),
    )
    # Another address of the same device (traps.sources in the site file).
    relayed = hear("10.0.0.99", f"{UPS_TRAPS}.1")
    assert not isinstance(relayed, Unmapped) and relayed.equipment_id == "ups-1"
    assert hear("10.0.0.6", f"{UPS_TRAPS}.1") == Unmapped(
        f"no device at this address {UPS_TRAPS}.1"
    )
    assert hear("10.0.0.5", f"{UPS_TRAPS}.2") == Unmapped(
        f"unmapped trap oid {UPS_TRAPS}.2", "unmapped trap oid"
    )


def test_syslog_patterns_match_by_host_and_text_in_their_order(clock: ManualClock) -> None:
    fan = {"equipment": "router-1", "point": "fan", "alarm_type": "hvac_fault", "severity": "minor"}
    evaluator = SyslogEvaluator(
        [
            SyslogPattern.model_validate(
                fan | {"regex": r"Fan \d+ FAILED", "host": "rtr-1", "transition": "raised"}
            ),
            SyslogPattern.model_validate(fan | {"regex": r"Fan \d+ OK", "transition": "cleared"}),
        ]
    )

    def message(host: str | None, text: str) -> SyslogMessage:
        return SyslogMessage(
            facility=23, severity=5, hostname=host, app="envmond", message=text,
            timestamp=None, rfc=3164,
        )  # fmt: skip

    assert evaluator.feed(message("other", "%ENVMON-2-FAN: Fan 2 FAILED"), now=clock.now()) == []
    [raised] = evaluator.feed(message("rtr-1", "%ENVMON-2-FAN: Fan 2 FAILED"), now=clock.now())
    assert (raised.equipment_id, raised.transition.value, raised.reason, raised.ts) == (
        "router-1",
        "raised",
        "syslog rtr-1: %ENVMON-2-FAN: Fan 2 FAILED",
        clock.now(),
    )
    [cleared] = evaluator.feed(message(None, "Fan 2 OK"), now=clock.now())
    assert (cleared.transition.value, cleared.reason) == ("cleared", "syslog ?: Fan 2 OK")

"""Syslog parsing on literal RFC 3164 / 5424 lines, and the UDP receiver end to end (with the
patterns' evaluation, as sensing wires them)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import pytest

from agent.evaluation import SyslogEvaluator
from agent.events import AlarmTransition
from agent.sensors.observations import SyslogMessage
from agent.sensors.syslog import SyslogReceiver, parse_syslog
from clocks import SystemClock
from siteconfig import SyslogListener, load_site
from tests.agent.sensors.recording import RecordingSink, until
from tests.agent.sensors.snmp.fixtures import free_udp_port


def _3164(host: str | None, ts: str, message: str, **more: str | None) -> SyslogMessage:
    fields: dict[str, object] = {"app": None, "mnemonic": None, **more}
    return SyslogMessage(
        facility=23, severity=5, hostname=host, message=message, timestamp=ts, rfc=3164,
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


EXAMPLE = Path(__file__).resolve().parents[3] / "firmware_config/sites/snmp-example.yaml"
UPDOWN = "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down"
# Network equipment's RFC 3164 forms (moved last in the parameter list by the ids below).
CISCO = [
    (  # the line: hostname, then the Cisco tag (not a program name)
        b"<187>Dec  7 01:52:05 router-1 %ENVMON-3-FAN_FAIL: Fan tray 2 FAIL",
        SyslogMessage(
            facility=23, severity=3, hostname="router-1", app=None,
            message="%ENVMON-3-FAN_FAIL: Fan tray 2 FAIL", timestamp="Dec  7 01:52:05",
            rfc=3164, mnemonic="%ENVMON-3-FAN_FAIL",
        ),
    ),
    (  # IOS default: sequence number, unsynchronised clock, milliseconds, no hostname
        b"<189>58: *Mar  1 00:15:32.123: " + UPDOWN.encode(),
        _3164(None, "*Mar  1 00:15:32.123", UPDOWN, mnemonic="%LINK-3-UPDOWN"),
    ),
    (  # IOS "logging origin-id hostname": the hostname first, with a colon
        b"<189>59: router-1: *Mar  1 00:15:32.123: " + UPDOWN.encode(),
        _3164("router-1", "*Mar  1 00:15:32.123", UPDOWN, mnemonic="%LINK-3-UPDOWN"),
    ),
    (  # NX-OS: a year, then the hostname
        b"<189>2026 Dec  7 01:52:05 nxos-1 %ETHPORT-5-IF_DOWN_LINK_FAILURE: Ethernet1/1 is down",
        _3164(
            "nxos-1", "2026 Dec  7 01:52:05",
            "%ETHPORT-5-IF_DOWN_LINK_FAILURE: Ethernet1/1 is down",
            mnemonic="%ETHPORT-5-IF_DOWN_LINK_FAILURE",
        ),
    ),
    (  # RFC 3164 without a hostname: the token after the time is the program
        b"<189>Dec  7 01:52:05 upsd[77]: UPS on battery",
        _3164(None, "Dec  7 01:52:05", "UPS on battery", app="upsd"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            # RFC 3164 section 5.4 example
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            SyslogMessage(
                facility=4,
                severity=2,
                hostname="mymachine",
                app="su",
                message="'su root' failed for lonvick on /dev/pts/8",
                timestamp="Oct 11 22:14:15",
                rfc=3164,
            ),
        ),
        (
            b"<189>Nov  4 09:01:02 rtr-nro-01 envmond[412]: %ENVMON-2-FAN: Fan 2 FAILED\n",
            SyslogMessage(
                facility=23,
                severity=5,
                hostname="rtr-nro-01",
                app="envmond",
                message="%ENVMON-2-FAN: Fan 2 FAILED",
                timestamp="Nov  4 09:01:02",
                rfc=3164,
                mnemonic="%ENVMON-2-FAN",
            ),
        ),
        (
            # RFC 5424 section 6.5 example 1 (BOM before the message)
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
            "\ufeff'su root' failed for lonvick on /dev/pts/8".encode(),
            SyslogMessage(
                facility=4,
                severity=2,
                hostname="mymachine.example.com",
                app="su",
                message="'su root' failed for lonvick on /dev/pts/8",
                timestamp="2003-10-11T22:14:15.003Z",
                rfc=5424,
            ),
        ),
        (
            # RFC 5424 section 6.5 example 3: structured data, then the message
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
            b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
            b"An application event log entry...",
            SyslogMessage(
                facility=20,
                severity=5,
                hostname="mymachine.example.com",
                app="evntslog",
                message="An application event log entry...",
                timestamp="2003-10-11T22:14:15.003Z",
                rfc=5424,
                structured_data='[exampleSDID@32473 iut="3" eventSource="Application"'
                ' eventID="1011"]',
            ),
        ),
        *CISCO,
        (
            b"<13>1 - - - - - -",
            SyslogMessage(
                facility=1,
                severity=5,
                hostname=None,
                app=None,
                message="",
                timestamp=None,
                rfc=5424,
            ),
        ),
    ],
    ids=["3164-rfc-example", "3164-router", "5424-bom", "5424-structured-data", "5424-nil"]
    + [f"cisco-{i}" for i in range(1, len(CISCO) + 1)],
)
def test_parses_literal_lines(line: bytes, expected: SyslogMessage) -> None:
    assert parse_syslog(line) == expected


@pytest.mark.parametrize("line", [b"no priority here", b"<999>1 - - - - - -", b""])
def test_rejects_lines_without_a_valid_priority(line: bytes) -> None:
    assert parse_syslog(line) is None


async def test_a_datagram_to_the_receiver_raises_and_clears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = SyslogListener.model_validate(
        {
            "bind": "127.0.0.1",
            "port": free_udp_port(),
            "patterns": [
                {
                    "regex": r"%ENVMON-\d-FAN: Fan \d+ FAILED",
                    "host": "rtr-nro-01",
                    "equipment": "router-1",
                    "point": "fan",
                    "alarm_type": "hvac_fault",
                    "severity": "minor",
                    "transition": "raised",
                },
                {
                    "regex": r"%ENVMON-\d-FAN: Fan \d+ OK",
                    "equipment": "router-1",
                    "point": "fan",
                    "alarm_type": "hvac_fault",
                    "severity": "minor",
                    "transition": "cleared",
                },
            ],
        }
    )
    got: list[AlarmTransition] = []
    patterns, clock = SyslogEvaluator(settings.patterns), SystemClock()
    receiver = SyslogReceiver(
        bind=settings.bind,
        port=settings.port,
        on_message=lambda message: got.extend(patterns.feed(message, now=clock.now())),
    )
    async with receiver as rx:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for line in (
                b"<189>Nov  4 09:01:02 other-host envmond: %ENVMON-2-FAN: Fan 2 FAILED",
                b"<189>Nov  4 09:01:02 rtr-nro-01 envmond: %ENVMON-2-FAN: Fan 2 FAILED",
                b"garbage",
                b"<189>1 2026-11-04T09:05:00Z rtr-nro-01 envmond - - - %ENVMON-2-FAN: Fan 2 OK",
            ):
                sock.sendto(line, ("127.0.0.1", rx.port))
        for _ in range(100):
            if len(got) >= 2 and rx.rejected:
                break
            await asyncio.sleep(0.02)
    assert [(t.equipment_id, t.point, t.alarm_type, t.transition.value) for t in got] == [
        ("router-1", "fan", "hvac_fault", "raised"),
        ("router-1", "fan", "hvac_fault", "cleared"),
    ]
    assert got[0].reason == "syslog rtr-nro-01: %ENVMON-2-FAN: Fan 2 FAILED"
    assert rx.rejected == 1 and rx.received == 3
    assert "not a syslog message" in caplog.text


async def test_sensing_service_runs_the_receiver_and_moves_it_on_reload() -> None:
    from agent.sensing import SensingService
    from siteconfig import SiteConfig

    pattern = {
        "regex": "UPS on battery",
        "equipment": "ups-1",
        "point": "output_source",
        "alarm_type": "on_battery",
        "severity": "major",
        "transition": "raised",
        "expire_s": 600,
    }

    def config(port: int) -> SiteConfig:
        return SiteConfig.model_validate(
            {
                "agent_id": "t1",
                "site_id": "S1",
                "site_kind": "nro",
                "syslog": {"bind": "127.0.0.1", "port": port, "patterns": [pattern]},
            }
        )

    class Sink:
        def __init__(self) -> None:
            self.got: list[AlarmTransition] = []

        def transition(self, event: AlarmTransition) -> None:
            self.got.append(event)

        def samples(self, samples: object) -> None:
            pass

    first, second = free_udp_port(), free_udp_port()
    sink = Sink()
    line = b"<12>Nov  4 09:01:02 ups-1 upsd: UPS on battery"
    async with SensingService(config=config(first), sink=sink, clock=SystemClock()) as service:
        await service.reload(config(second))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(line, ("127.0.0.1", second))
        for _ in range(100):
            if sink.got:
                break
            await asyncio.sleep(0.02)
    assert [(t.equipment_id, t.alarm_type, t.transition.value) for t in sink.got] == [
        ("ups-1", "on_battery", "raised")
    ]
    # The old port was released by the reload.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", first))


async def test_real_world_forms_raise_and_clear_through_the_shipped_example_patterns() -> None:
    """The shipped example's patterns against ``logger`` (RFC 3164 and RFC 5424 with
    structured data) and raw Cisco lines, as a router sends them."""
    from agent.sensing import SensingService

    site = load_site(EXAMPLE)
    assert site.syslog is not None
    port = free_udp_port()
    # Only the listener: the example's devices are not here; the router is this machine.
    patterns = [
        p.model_copy(update={"host": "127.0.0.1"}) if p.host else p for p in site.syslog.patterns
    ]
    config = site.model_copy(
        update={
            "devices": [],
            "traps": None,
            "syslog": site.syslog.model_copy(
                update={"bind": "127.0.0.1", "port": port, "patterns": patterns}
            ),
        }
    )
    sink = RecordingSink()

    def logger(*args: str) -> None:
        base = ["logger", "-d", "-n", "127.0.0.1", "-P", str(port)]
        subprocess.run([*base, *args], check=True)

    def raw(line: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(line, ("127.0.0.1", port))

    async with SensingService(config=config, sink=sink, clock=SystemClock()):
        raw(b"<187>Dec  7 01:52:05 router-1 %ENVMON-3-FAN_FAIL: Fan tray 2 FAIL")
        await until(lambda: sink.of("hvac_fault") == ["raised"])
        logger("--rfc5424", "--sd-id", "envmon@9", "--sd-param", 'tray="2"', "-t", "envmon",
               "%ENVMON-6-FAN_OK: Fan tray 2 OK")  # fmt: skip
        await until(lambda: sink.of("hvac_fault") == ["raised", "cleared"])
        # IOS's default form names no host: the sender's address stands for it.
        raw(b"<187>58: *Mar  1 00:15:32.123: %LINK-3-UPDOWN: Interface GigabitEthernet0/1,"
            b" changed state to down")  # fmt: skip
        await until(lambda: sink.of("link_down") == ["raised"])
        logger("--rfc3164", "-t", "relay", "%LINK-3-UPDOWN: Interface GigabitEthernet0/1,"
               " changed state to up")  # fmt: skip
        await until(lambda: sink.of("link_down") == ["raised", "cleared"])
        # The same text under another program's tag does not match the tag pattern.
        raw(b"<13>Dec  7 01:52:06 router-1 fake: GigabitEthernet0/1, changed state to down")
        await asyncio.sleep(0.2)
        assert sink.of("link_down") == ["raised", "cleared"]

"""Syslog parsing on literal RFC 3164 / 5424 lines, and the UDP receiver end to end (with the
patterns' evaluation, as sensing wires them)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from agent.evaluation import SyslogEvaluator
from agent.events import AlarmTransition
from agent.sensors.observations import SyslogMessage
from agent.sensors.syslog import SyslogReceiver, parse_syslog
from clocks import SystemClock
from siteconfig import SyslogListener
from tests.agent.sensors.snmp.fixtures import free_udp_port


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
            ),
        ),
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
    ids=["3164-rfc-example", "3164-router", "5424-bom", "5424-structured-data", "5424-nil"],
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

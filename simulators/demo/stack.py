"""The demo: the real chain on embedded defaults, and a scripted timeline of door contacts."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from collector.datadir import DEMO_INVENTORY_DIR
from simulators.broker import BrokerError
from simulators.processes import stop_signals_interrupt
from simulators.stack import Stack, StackError

SITES_DIR = Path(__file__).resolve().parents[2] / "firmware_config" / "sites" / "demo"
INVENTORY_DIR = DEMO_INVENTORY_DIR

# (seconds after start, agent, contact point, alarm position?)
TIMELINE: tuple[tuple[float, str, str, bool], ...] = (
    (10, "nro-lyon-01", "door", True),
    (25, "pm-lyon-0101", "door", True),
    (40, "nro-lyon-01", "door", False),
    (55, "pm-lyon-0102", "fire", True),
    (75, "pm-lyon-0101", "door", False),
    (95, "pm-lyon-0102", "fire", False),
)


class DemoError(RuntimeError):
    """The demo cannot run: a port in use, a missing binary, a component that did not start."""


@dataclass(frozen=True)
class DemoOptions:
    """Where and how long the demo runs."""

    workdir: Path
    http_port: int = 8000
    broker_port: int | None = None
    duration_s: float | None = None


def _say(line: str) -> None:
    # A closed terminal must not keep the demo from stopping what it started.
    with contextlib.suppress(OSError):
        print(line, flush=True)


def run_demo(options: DemoOptions) -> int:
    """Start everything, play the timeline, print tickets as they open; Ctrl-C, SIGTERM or a
    closed terminal stops it all (and every child dies with the demo however it ends)."""
    if options.workdir.exists():
        shutil.rmtree(options.workdir)  # every demo starts from an empty database
    stack = Stack(
        options.workdir,
        http_port=options.http_port,
        broker_port=options.broker_port,
        inventory_dir=INVENTORY_DIR,
    )
    with stop_signals_interrupt():
        try:
            try:
                stack.check_ports()
                stack.broker.start()
            except (StackError, BrokerError) as err:
                raise DemoError(str(err)) from err
            stack.noc_token = stack.create_token(name="demo-noc", role="noc")
            try:
                stack.start_collector()
                for site_file in sorted(SITES_DIR.glob("*.yaml")):
                    # Enrolled by the demo inventory's ``agents``, as a deployment's would be.
                    agent = stack.add_agent(site_file, enrol=False)
                    stack.wait_for_gpio(agent.agent_id)
            except StackError as err:
                raise DemoError(f"{err}\n(logs in {options.workdir / 'logs'})") from err
            _banner(stack, options)
            _play(stack, options.duration_s)
        except KeyboardInterrupt:
            _say("\nstopping…")
        finally:
            stack.stop()
    _say("demo stopped")
    return 0


def _banner(stack: Stack, options: DemoOptions) -> None:
    _say("")
    _say("shelterwatch demo is running")
    _say(f"  dashboard   {stack.base_url}/?token={stack.noc_token}")
    auth = f"-H 'Authorization: Bearer {stack.noc_token}'"
    _say(f"  tickets     curl {auth} {stack.base_url}/api/v1/tickets")
    _say(f"  API docs    {stack.base_url}/docs")
    _say(f"  broker      mqtt://127.0.0.1:{stack.broker.port} (MQTT 5)")
    _say(f"  agents      {', '.join(stack.agents)}")
    _say(f"  logs        {options.workdir / 'logs'}")
    _say("Ctrl-C stops every process.")
    _say("")


def _play(stack: Stack, duration_s: float | None) -> None:
    start = time.monotonic()
    pending = list(TIMELINE)
    seen: set[str] = set()
    while duration_s is None or time.monotonic() - start < duration_s:
        elapsed = time.monotonic() - start
        while pending and pending[0][0] <= elapsed:
            at, agent_id, point, alarm = pending.pop(0)
            stack.set_contact(agent_id, point, alarm=alarm)
            state = {"door": ("opened", "closed"), "fire": ("fire relay ON", "fire relay off")}
            words = state.get(point, ("alarm", "normal"))
            _say(f"[+{at:>4.0f}s] {agent_id}: {point} {words[0] if alarm else words[1]}")
        _report_new_tickets(stack, seen)
        time.sleep(0.5)


def _report_new_tickets(stack: Stack, seen: set[str]) -> None:
    try:
        items = stack.api("GET", "/api/v1/tickets?limit=100").json()["items"]
    except (httpx.HTTPError, ValueError, KeyError):
        return
    for ticket in reversed(items):
        if ticket["ref"] not in seen:
            seen.add(ticket["ref"])
            _say(
                f"          ticket {ticket['ref']} {ticket['state']}: {ticket['title']}"
                f" [{ticket['criticality']}]"
            )
    sys.stdout.flush()

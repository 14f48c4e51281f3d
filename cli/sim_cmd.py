"""``shelterwatch sim ...``: simulators for testers (fleet)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from typing import Any

from cli.collector_cmd import host_port


def register(sub: Any) -> None:
    """Add the ``sim`` subcommands."""
    parser = sub.add_parser("sim", help="simulators for testers")
    ssub = parser.add_subparsers(dest="sim_command", required=True)

    fleet = ssub.add_parser("fleet", help="run thousands of virtual agents against a broker")
    fleet.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT")
    fleet.add_argument("--agents", type=int, default=1000)
    fleet.add_argument("--rate", type=float, default=1.0, help="messages per agent per minute")
    fleet.add_argument("--duration", type=float, default=60.0, help="seconds of traffic")
    fleet.add_argument("--storm-sites", type=int, default=0, help="sites raising 5 alarms each")
    fleet.add_argument("--storm-window", type=float, default=60.0, help="seconds")
    fleet.add_argument("--prefix", default="fleet", help="agent id prefix")
    fleet.set_defaults(handler=_fleet)


def _fleet(args: argparse.Namespace) -> int:
    from clocks import SystemClock
    from simulators.fleet import Fleet, FleetConfig

    host, port = host_port(args.broker, what="--broker")
    config = FleetConfig(
        host=host,
        port=port,
        agents=args.agents,
        id_prefix=args.prefix,
        msgs_per_agent_per_min=args.rate,
        storm_sites=args.storm_sites,
        storm_window_s=args.storm_window,
    )
    report = asyncio.run(Fleet(config, clock=SystemClock()).run(duration_s=args.duration))
    print(json.dumps(dataclasses.asdict(report)))
    return 0 if report.connect_failures == 0 else 1

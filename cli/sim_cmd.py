"""``shelterwatch sim ...``: simulators for testers (scenario runner, fleet)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from cli.collector_cmd import host_port
from cli.errors import UserError


def register(sub: Any) -> None:
    """Add the ``sim`` subcommands."""
    parser = sub.add_parser("sim", help="simulators for testers")
    ssub = parser.add_subparsers(dest="sim_command", required=True)

    run = ssub.add_parser(
        "run", help="play scenario files against the real agent, broker and collector"
    )
    run.add_argument("files", nargs="+", type=Path, metavar="FILE", help="scenario YAML files")
    run.add_argument("--junit", type=Path, help="write a JUnit XML report here")
    run.add_argument(
        "--workdir", type=Path, help="where databases and logs go (default: a new temp dir)"
    )
    run.add_argument("--fast", action="store_true", help="only the scenarios marked fast: true")
    run.add_argument(
        "--broker", help="HOST:PORT of a running broker (default: the runner starts mosquitto)"
    )
    run.add_argument(
        "--collector", help="base URL of a running collector (needs --broker, --token)"
    )
    run.add_argument("--token", help="a NOC token of that collector")
    run.add_argument("--db", help="that collector's database URL (for delivered expectations)")
    run.set_defaults(handler=_run)

    fleet = ssub.add_parser("fleet", help="run thousands of virtual agents against a broker")
    fleet.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT")
    fleet.add_argument("--agents", type=int, default=1000)
    fleet.add_argument("--rate", type=float, default=1.0, help="messages per agent per minute")
    fleet.add_argument("--duration", type=float, default=60.0, help="seconds of traffic")
    fleet.add_argument("--storm-sites", type=int, default=0, help="sites raising 5 alarms each")
    fleet.add_argument("--storm-window", type=float, default=60.0, help="seconds")
    fleet.add_argument("--prefix", default="fleet", help="agent id prefix")
    fleet.add_argument(
        "--inventory-out",
        type=Path,
        help="write an inventory file enrolling the fleet's agents (for `collector run "
        "--inventory`: the collector admits only enrolled agents) and exit",
    )
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
    if args.inventory_out is not None:
        args.inventory_out.write_text(yaml.safe_dump(config.inventory(), sort_keys=False))
        print(f"{args.inventory_out}: {config.agents} agents enrolled at their sites")
        return 0
    report = asyncio.run(Fleet(config, clock=SystemClock()).run(duration_s=args.duration))
    print(json.dumps(dataclasses.asdict(report)))
    return 0 if report.connect_failures == 0 else 1


def _run(args: argparse.Namespace) -> int:
    from simulators.processes import stop_signals_interrupt
    from simulators.scenario.report import text_report, write_junit
    from simulators.scenario.runner import run_scenario
    from simulators.scenario.schema import ScenarioError, load_scenario

    try:  # every file is validated before anything starts
        scenarios = [(path, load_scenario(path)) for path in args.files]
    except ScenarioError as err:
        raise UserError(str(err)) from err
    if args.fast:
        scenarios = [(p, s) for p, s in scenarios if s.fast]
    external = _external(args)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="shelterwatch-scenarios-"))
    results = []
    # SIGTERM and a closed terminal stop a scenario as Ctrl-C does: its world is stopped in
    # order (and whatever it started dies with the runner however the runner ends).
    with stop_signals_interrupt():
        for index, (path, scenario) in enumerate(scenarios, start=1):
            print(f"[{index}/{len(scenarios)}] {scenario.name} ({path})", flush=True)
            workdir = root / f"{index:02d}-{path.stem}"
            if workdir.exists():
                shutil.rmtree(workdir)
            results.append(
                run_scenario(
                    scenario,
                    path=path,
                    workdir=workdir,
                    say=lambda line: print(line, flush=True),
                    external=external,
                )
            )
    print()
    print(text_report(results), flush=True)
    if args.junit:
        write_junit(results, args.junit)
        print(f"JUnit report: {args.junit}")
    return 0 if all(r.passed for r in results) else 1


def _external(args: argparse.Namespace) -> Any:
    from simulators.scenario.world import External

    given = [args.broker, args.collector, args.token]
    if not any(given):
        return None
    if not all(given):
        raise UserError("--broker, --collector and --token go together (an external platform)")
    host, port = host_port(args.broker, what="--broker")
    return External(
        broker_host=host, broker_port=port, api_url=args.collector, token=args.token, db_url=args.db
    )

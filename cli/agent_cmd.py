"""``shelterwatch agent ...``: run the agent, validate config files."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from cli.errors import UserError


def register(sub: Any) -> None:
    """Add the ``agent`` subcommands."""
    parser = sub.add_parser("agent", help="the shelter agent")
    agent_sub = parser.add_subparsers(dest="agent_command", required=True)

    run = agent_sub.add_parser("run", help="run the agent for one site")
    run.add_argument("--config", type=Path, required=True, help="site file (YAML)")
    run.set_defaults(handler=_run)

    check = agent_sub.add_parser("check", help="on site: live sensors, outbox, reachability")
    check.add_argument("--config", type=Path, required=True, help="the agent's site file")
    check.add_argument("--watch", action="store_true", help="refresh every 2 s until Ctrl-C")
    check.add_argument("--json", action="store_true", help="print the raw status document")
    check.set_defaults(handler=_check)

    validate = agent_sub.add_parser(
        "validate", help="check site/profile files, exit non-zero if invalid"
    )
    validate.add_argument("files", type=Path, nargs="+")
    validate.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    from agent.config.validate import validate_files

    errors = validate_files(args.files)
    for line in errors:
        print(line, file=sys.stderr)
    if errors:
        return 1
    print(f"{len(args.files)} file(s) valid")
    return 0


def _run(args: argparse.Namespace) -> int:
    from agent.config import ConfigError
    from agent.runtime import AgentRuntime
    from clocks import SystemClock

    try:
        runtime = AgentRuntime(config_path=args.config, clock=SystemClock())
    except ConfigError as err:
        raise UserError(str(err)) from err
    except OSError as err:
        raise UserError(f"{args.config}: {err.strerror or err}") from err

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await runtime.run(stop)

    asyncio.run(main())
    return 0


def _check(args: argparse.Namespace) -> int:
    import json
    import time

    from agent.config import ConfigError, load_site
    from agent.runtime.check import problems, render
    from agent.runtime.status import read_status, status_socket_path

    try:
        config = load_site(args.config)
    except ConfigError as err:
        raise UserError(str(err)) from err
    path = status_socket_path(config.outbox.path)
    while True:
        try:
            status = read_status(path)
        except OSError as err:
            raise UserError(
                f"no agent answers on {path} ({err.strerror or err}): is it running?"
            ) from err
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            if args.watch:
                print("\033[2J\033[H", end="")
            print(render(status), flush=True)
        if not args.watch:
            return 1 if problems(status) else 0
        time.sleep(2)

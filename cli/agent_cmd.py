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

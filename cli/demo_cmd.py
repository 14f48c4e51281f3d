"""``shelterwatch demo``: the whole chain on one machine, on embedded defaults."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.errors import UserError


def register(sub: Any) -> None:
    """Add the ``demo`` command."""
    parser = sub.add_parser(
        "demo", help="broker + collector (SQLite) + three simulated sites + dashboard"
    )
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--broker-port", type=int, default=None, help="default: a free port")
    parser.add_argument("--workdir", type=Path, default=Path("var/demo"))
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: Ctrl-C)",
    )
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from simulators.demo import DemoError, DemoOptions, run_demo

    try:
        return run_demo(
            DemoOptions(
                workdir=args.workdir,
                http_port=args.http_port,
                broker_port=args.broker_port,
                duration_s=args.duration,
            )
        )
    except DemoError as err:
        raise UserError(str(err)) from err

"""``shelterwatch`` entry point: subcommands import only what they need (no FastAPI on a Pi)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from cli.errors import UserError

# subcommand -> module providing ``register(subparsers)``; imported lazily.
_COMMANDS = {
    "agent": "cli.agent_cmd",
    "collector": "cli.collector_cmd",
    "sim": "cli.sim_cmd",
    "demo": "cli.demo_cmd",
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Parser with only the subcommand named in ``argv`` loaded (so imports stay minimal)."""
    parser = argparse.ArgumentParser(
        prog="shelterwatch", description="Supervision of FTTH technical sites."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(_COMMANDS) + "}")
    sub.required = True
    wanted = next((a for a in argv if a in _COMMANDS), None)
    for name, module in _COMMANDS.items():
        if wanted is None or name == wanted:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; user errors print one line and exit 2."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Schema migrations at start are routine; their step-by-step log is noise.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UserError as err:
        print(f"shelterwatch: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``shelterwatch collector ...``: run an instance, create API tokens."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from cli.errors import UserError


def register(sub: Any) -> None:
    """Add the ``collector`` subcommands."""
    parser = sub.add_parser("collector", help="the central collector")
    csub = parser.add_subparsers(dest="collector_command", required=True)

    run = csub.add_parser("run", help="run one collector instance (ingest + API + timers)")
    run.add_argument("--db", default="sqlite:///var/shelterwatch.db", help="SQLAlchemy URL")
    run.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT of the MQTT broker")
    run.add_argument("--http", default="127.0.0.1:8000", help="HOST:PORT for the API and dashboard")
    run.add_argument("--instance-id", default="c1")
    run.add_argument(
        "--inventory",
        type=Path,
        default=None,
        help="folder of inventory YAML files (sites, clients, services) to load at start",
    )
    run.set_defaults(handler=_run)

    token = csub.add_parser("create-token", help="create an API user and print its token")
    token.add_argument("--db", default="sqlite:///var/shelterwatch.db")
    token.add_argument("--name", required=True)
    token.add_argument("--role", required=True, choices=["noc", "client", "technician", "viewer"])
    token.add_argument("--client-id", default=None, help="required for --role client")
    token.set_defaults(handler=_create_token)


def host_port(value: str, *, what: str) -> tuple[str, int]:
    """Parse HOST:PORT or fail with a message naming the option."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{what}: expected HOST:PORT, got {value!r}")
    return host, int(port)


def _check_inventory(directory: Path) -> None:
    from collector.sites.inventory import InventoryError, read_inventory

    if not directory.is_dir():
        raise UserError(f"--inventory: {directory} is not a folder")
    for path in sorted(directory.glob("*.yaml")):
        try:
            read_inventory(path)
        except InventoryError as err:
            raise UserError(str(err)) from err


def _sqlite_parent(db_url: str) -> None:
    # Create the folder of an SQLite file so a first run works out of the box.
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def _run(args: argparse.Namespace) -> int:
    from clocks import SystemClock
    from collector.process import run_collector
    from collector.settings import CollectorSettings
    from simulators.broker import port_in_use

    broker_host, broker_port = host_port(args.broker, what="--broker")
    http_host, http_port = host_port(args.http, what="--http")
    if port_in_use(http_port, http_host):
        raise UserError(f"--http: port {http_port} on {http_host} is already in use")
    _sqlite_parent(args.db)
    if args.inventory is not None:
        _check_inventory(args.inventory)
    settings = CollectorSettings(
        db_url=args.db,
        broker_host=broker_host,
        broker_port=broker_port,
        http_host=http_host,
        http_port=http_port,
        instance_id=args.instance_id,
        inventory_dir=args.inventory,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_collector(settings=settings, clock=SystemClock(), stop=stop)

    asyncio.run(main())
    return 0


def _create_token(args: argparse.Namespace) -> int:
    from clocks import SystemClock
    from collector.api.auth import create_user
    from collector.api.deps import Role
    from collector.process import prepare_database

    if args.role == "client" and not args.client_id:
        raise UserError("--client-id is required for --role client")
    _sqlite_parent(args.db)
    factory = prepare_database(args.db)
    with factory() as session:
        _, token = create_user(
            session,
            name=args.name,
            role=Role(args.role),
            client_id=args.client_id,
            now=SystemClock().now(),
        )
        session.commit()
    print(token)
    return 0

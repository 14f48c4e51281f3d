"""``shelterwatch collector ...``: run an instance, create API tokens, enrol agents."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.errors import UserError
from clocks import Clock, WarpClock, clock_from_environment

if TYPE_CHECKING:
    from collector.enrolment import Enrolment

log = logging.getLogger(__name__)


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
        help="folder of inventory YAML files (sites, clients, services, agents) to load at start",
    )
    run.add_argument(
        "--data",
        type=Path,
        default=None,
        help="the collector's data folder (contracts/, rules/); default: the shipped one",
    )
    run.add_argument("--broker-user", default=None, help="the collector's broker user name")
    run.add_argument(
        "--broker-password-file",
        type=Path,
        default=None,
        help="file holding the broker user's password (from enrol-collector)",
    )
    run.add_argument(
        "--ack-secret-file",
        type=Path,
        default=None,
        help="the collectors' master secret acks are signed with (from enrol-collector)",
    )
    run.set_defaults(handler=_run)

    token = csub.add_parser("create-token", help="create an API user and print its token")
    token.add_argument("--db", default="sqlite:///var/shelterwatch.db")
    token.add_argument("--name", required=True)
    token.add_argument(
        "--role",
        required=True,
        choices=["noc", "client", "technician", "viewer", "monitoring"],
        help="monitoring: reads /metrics and nothing else (a Prometheus scraper)",
    )
    token.add_argument(
        "--client-id", default=None, help="required for --role client: a known client"
    )
    token.add_argument(
        "--expires-in-hours",
        type=float,
        default=None,
        help="the token stops working after this many hours (e.g. a technician's day: 12)",
    )
    token.set_defaults(handler=_create_token)

    _register_enrolment(csub)


def _register_enrolment(csub: Any) -> None:
    collector = csub.add_parser(
        "enrol-collector",
        help="the broker's configuration and clients for collector instances (first, once "
        "per instance), and the collectors' ack secret",
    )
    collector.add_argument(
        "--instance",
        action="append",
        required=True,
        metavar="ID",
        help="collector instance id (repeat for each: --instance c1 --instance c2)",
    )
    collector.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the collectors' folder: their broker passwords, the broker admin's password "
        "and the ack secret (keep it; enrol-agent reads it)",
    )
    collector.add_argument(
        "--broker-dir",
        type=Path,
        required=True,
        help="folder of the broker's shelterwatch.conf and dynamic-security.json "
        "(e.g. /etc/mosquitto/shelterwatch)",
    )
    collector.add_argument(
        "--plugin", type=Path, default=None, help="path of mosquitto_dynamic_security.so"
    )
    _broker_access_options(collector, what="instances")
    collector.set_defaults(handler=_enrol_collector)

    enrol = csub.add_parser(
        "enrol-agent",
        help="an agent's broker client (on the running broker), ack key and site-file skeleton",
    )
    enrol.add_argument("--agent-id", required=True)
    enrol.add_argument("--site-id", required=True)
    enrol.add_argument("--site-kind", required=True, choices=["nro", "pm"])
    enrol.add_argument("--region", default="unknown")
    enrol.add_argument("--parent-nro", default=None, help="for a PM: the NRO it hangs off")
    enrol.add_argument(
        "--broker", required=True, help="HOST:PORT of the broker as the box reaches it"
    )
    enrol.add_argument("--ca-file", type=Path, default=None, help="CA file on the box (TLS)")
    enrol.add_argument(
        "--collector-url", default=None, help="collector API URL for technicians on site"
    )
    enrol.add_argument(
        "--out", type=Path, required=True, help="folder for the agent's password, key, site file"
    )
    enrol.add_argument(
        "--collector-dir",
        type=Path,
        required=True,
        help="the folder enrol-collector wrote (broker admin password, ack secret)",
    )
    enrol.add_argument(
        "--inventory",
        type=Path,
        default=None,
        help="the collector's inventory folder: the agent's binding to its site (and the site, "
        "if new) goes into its enrolled.yaml; the collector admits enrolled agents only",
    )
    _broker_access_options(enrol, what="agent")
    enrol.set_defaults(handler=_enrol_agent)


def _broker_access_options(parser: Any, *, what: str) -> None:
    parser.add_argument(
        "--admin-broker",
        default="127.0.0.1:1883",
        help="HOST:PORT where enrolment reaches the running broker as its admin",
    )
    parser.add_argument(
        "--rotate",
        action="store_true",
        help=f"replace the broker password of {what} enrolled before",
    )


def host_port(value: str, *, what: str) -> tuple[str, int]:
    """Parse HOST:PORT or fail with a message naming the option."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{what}: expected HOST:PORT, got {value!r}")
    return host, int(port)


def _check_data(settings: Any) -> None:
    """Every data and inventory file, checked before anything starts: one line, exit 2."""
    from collector.datadir import DataError
    from collector.inventory.files import InventoryError
    from collector.process import check_collector_data

    for option, folder in (("--data", settings.data_dir), ("--inventory", settings.inventory_dir)):
        if folder is not None and not folder.is_dir():
            raise UserError(f"{option}: {folder} is not a folder")
    try:
        check_collector_data(settings)
    except (DataError, InventoryError) as err:
        raise UserError(str(err)) from err


def _port_in_use(port: int, host: str) -> bool:
    # A production command does not load the simulators for their port check.
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _sqlite_parent(db_url: str) -> None:
    # Create the folder of an SQLite file so a first run works out of the box.
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def _run(args: argparse.Namespace) -> int:
    from collector.process import run_collector
    from collector.settings import CollectorSettings

    broker_host, broker_port = host_port(args.broker, what="--broker")
    http_host, http_port = host_port(args.http, what="--http")
    if _port_in_use(http_port, http_host):
        raise UserError(f"--http: port {http_port} on {http_host} is already in use")
    _sqlite_parent(args.db)
    settings = CollectorSettings(
        db_url=args.db,
        broker_host=broker_host,
        broker_port=broker_port,
        broker_username=args.broker_user,
        broker_password=_broker_password(args.broker_password_file),
        ack_secret_file=_checked_ack_secret(args.ack_secret_file),
        http_host=http_host,
        http_port=http_port,
        instance_id=args.instance_id,
        inventory_dir=args.inventory,
        **({"data_dir": args.data} if args.data is not None else {}),
    )
    _check_data(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_collector(settings=settings, clock=_clock(), stop=stop)

    asyncio.run(main())
    return 0


def _broker_password(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as err:
        raise UserError(f"--broker-password-file: {path}: {err.strerror or err}") from err


def _checked_ack_secret(path: Path | None) -> Path | None:
    from protocol.acksig import read_key_file

    if path is not None:
        try:
            read_key_file(path)
        except ValueError as err:
            raise UserError(f"--ack-secret-file: {err}") from err
    return path


def _clock() -> Clock:
    clock = clock_from_environment()
    if isinstance(clock, WarpClock):
        log.warning("TEST CLOCK in use (%s): time jumps when a test says so", clock.control_file)
    return clock


def _create_token(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import IntegrityError

    from clocks import SystemClock
    from collector.identity.access import Role
    from collector.identity.tokens import UserRefused, create_user
    from collector.process import prepare_database

    if args.role == "client" and not args.client_id:
        raise UserError("--client-id is required for --role client")
    if args.role != "client" and args.client_id:
        raise UserError("--client-id is only for --role client")
    if args.expires_in_hours is not None and not args.expires_in_hours > 0:
        raise UserError("--expires-in-hours must be more than 0")
    _sqlite_parent(args.db)
    factory = prepare_database(args.db)
    now = SystemClock().now()
    expires_at = (
        None if args.expires_in_hours is None else now + timedelta(hours=args.expires_in_hours)
    )
    try:
        with factory() as session:
            _, token = create_user(
                session,
                name=args.name,
                role=Role(args.role),
                client_id=args.client_id,
                now=now,
                expires_at=expires_at,
            )
            session.commit()
    except UserRefused as err:
        raise UserError(str(err)) from err
    except IntegrityError as err:  # the same name, created at the same moment elsewhere
        raise UserError(f"a user named {args.name!r} already exists") from err
    print(token)
    if expires_at is not None:
        print(f"expires at {expires_at.isoformat(timespec='seconds')}", file=sys.stderr)
    return 0


def _enrol_agent(args: argparse.Namespace) -> int:
    from collector.enrolment import BrokerAccess, EnrolmentError, SiteSkeleton, enrol_agent
    from collector.inventory.files import InventoryError, SiteEntry, check_binding

    host, port = host_port(args.broker, what="--broker")
    admin_host, admin_port = host_port(args.admin_broker, what="--admin-broker")
    if args.inventory is not None:
        try:  # checked before the broker is touched: a refusal changes nothing
            check_binding(args.inventory, agent_id=args.agent_id, site_id=args.site_id)
            site = SiteEntry(
                site_id=args.site_id,
                kind=args.site_kind,
                region=args.region,
                parent_nro=args.parent_nro,
            )
        except (InventoryError, ValueError) as err:
            raise UserError(str(err)) from err
    try:
        result = enrol_agent(
            site=SiteSkeleton(
                agent_id=args.agent_id,
                site_id=args.site_id,
                site_kind=args.site_kind,
                region=args.region,
                parent_nro=args.parent_nro,
                broker_host=host,
                broker_port=port,
                ca_file=args.ca_file,
                collector_url=args.collector_url,
            ),
            out_dir=args.out,
            collector_dir=args.collector_dir,
            admin=BrokerAccess(admin_host, admin_port),
            rotate=args.rotate,
        )
    except (EnrolmentError, ValueError) as err:
        raise UserError(str(err)) from err
    if args.inventory is not None:
        written = _record_binding(args.inventory, agent_id=args.agent_id, site=site)
        result.written.append(written)
        result.notes.append(
            f"restart the collector (it loads {args.inventory} at start), or bind the agent "
            f"on a running one: PUT /api/v1/agents/{args.agent_id} with its site_id"
        )
    else:
        result.notes.append(
            "the collector admits enrolled agents only: add the agent to its inventory "
            f"(--inventory DIR) or PUT /api/v1/agents/{args.agent_id}"
        )
    _print_enrolment(result, rotated=args.rotate)
    return 0


def _record_binding(directory: Path, *, agent_id: str, site: Any) -> Path:
    from collector.inventory.files import InventoryError, record_enrolment

    try:
        return record_enrolment(directory, agent_id=agent_id, site=site)
    except InventoryError as err:
        raise UserError(str(err)) from err


def _enrol_collector(args: argparse.Namespace) -> int:
    from collector.enrolment import BrokerAccess, EnrolmentError, enrol_collector

    admin_host, admin_port = host_port(args.admin_broker, what="--admin-broker")
    try:
        result = enrol_collector(
            instances=list(args.instance),
            out_dir=args.out,
            broker_dir=args.broker_dir,
            admin=BrokerAccess(admin_host, admin_port),
            plugin=args.plugin,
            rotate=args.rotate,
        )
    except (EnrolmentError, ValueError) as err:
        raise UserError(str(err)) from err
    _print_enrolment(result, rotated=args.rotate)
    return 0


def _print_enrolment(result: Enrolment, *, rotated: bool) -> None:
    print(f"{'rotated' if rotated else 'enrolled'} {', '.join(result.usernames)}")
    for path in result.written:
        print(f"  wrote {path}")
    for note in result.notes:
        print(f"  {note}")

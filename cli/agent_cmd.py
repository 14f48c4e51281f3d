"""``shelterwatch agent ...``: run the agent, validate config files, check it, inspect the site."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

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

    _register_inspect(agent_sub)


def _register_inspect(agent_sub: Any) -> None:
    inspect = agent_sub.add_parser(
        "inspect", help="on site: an inspection (triggers are tests, not incidents)"
    )
    isub = inspect.add_subparsers(dest="inspect_command", required=True)
    start = isub.add_parser("start", help="start an inspection of this box's site")
    start.add_argument("--duration-min", type=int, default=60, help="1 to 720 (default 60)")
    start.add_argument(
        "--technician",
        default="",
        help="user name of the technician on the report (default: the token's own; a technician"
        " token may only name itself)",
    )
    start.set_defaults(handler=_inspect_start)
    status = isub.add_parser("status", help="the site's latest inspection and its checklist")
    status.set_defaults(handler=_inspect_status)
    complete = isub.add_parser("complete", help="file the report of the running inspection")
    complete.add_argument("--notes", default="", help="the technician's closing notes")
    complete.set_defaults(handler=_inspect_complete)
    for sub in (start, status, complete):
        sub.add_argument("--config", type=Path, required=True, help="the agent's site file")
        sub.add_argument(
            "--token",
            default=os.environ.get("SHELTERWATCH_TOKEN"),
            help="the technician's API token (default: $SHELTERWATCH_TOKEN)",
        )
        sub.add_argument(
            "--collector-url", default=None, help="collector API URL (default: the site file's)"
        )


def _validate(args: argparse.Namespace) -> int:
    from siteconfig.validate import validate_files

    errors = validate_files(args.files)
    for line in errors:
        print(line, file=sys.stderr)
    if errors:
        return 1
    print(f"{len(args.files)} file(s) valid")
    return 0


def _run(args: argparse.Namespace) -> int:
    from agent.buffer import StorageError
    from agent.clocksync import synced_probe_from_environment
    from agent.runtime import AgentFailed, AgentRuntime
    from agent.sensors.errors import DeviceError
    from clocks import SteppedClock, WarpClock, clock_from_environment, stepped_from_environment
    from siteconfig import ConfigError

    base = clock_from_environment()
    if isinstance(base, WarpClock):
        logging.getLogger(__name__).warning(
            "TEST CLOCK in use (%s): time jumps when a test says so", base.control_file
        )
    clock = stepped_from_environment(base)
    if isinstance(clock, SteppedClock):
        logging.getLogger(__name__).warning(
            "TEST WALL CLOCK in use (%s): the wall clock steps when a test says so",
            clock.control_file,
        )
    try:
        runtime = AgentRuntime(
            config_path=args.config, clock=clock, clock_synced=synced_probe_from_environment()
        )
    except ConfigError as err:
        raise UserError(str(err)) from err
    except StorageError as err:
        # Not moved aside, not replaced: systemd tries again until the disk takes writes.
        raise UserError(f"the outbox cannot be opened: {err}") from err
    except OSError as err:
        raise UserError(f"{args.config}: {err.strerror or err}") from err

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await runtime.run(stop)

    try:
        asyncio.run(main())
    except DeviceError as err:
        # A device this install cannot drive at all is refused at start, in one line.
        raise UserError(f"{args.config}: {err}") from err
    except AgentFailed as err:
        # Logged where it happened; systemd (Restart=always) starts the agent afresh.
        print(f"shelterwatch: agent gave up: {err}", file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    import json
    import time

    from agent.runtime.check import problems, render
    from agent.runtime.status import read_status, status_socket_path
    from siteconfig import ConfigError, load_site

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


# -- inspections, through the collector's API (urllib: the agent extra carries no HTTP client) --

_API_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class _Inspections:
    """The collector's inspection API for one site, as one technician."""

    base_url: str
    site_id: str
    token: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call; every way it can fail becomes a one-line ``UserError``."""
        request = urllib.request.Request(
            f"{self.base_url}/api/v1/inspections{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=_API_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise UserError(_refusal(err)) from err
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise UserError(f"collector unreachable at {self.base_url}: {reason}") from err
        except (http.client.HTTPException, ValueError) as err:  # not HTTP, or not JSON
            raise UserError(f"{self.base_url} did not answer as the collector API") from err


def _refusal(err: urllib.error.HTTPError) -> str:
    """The API's own message for a refused call (401 has a fixed one)."""
    if err.code == 401:
        return "the collector refused the technician token: invalid or expired"
    try:
        message = str(json.loads(err.read())["detail"])
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {err.code} {err.reason}"
    return f"the collector refused: {message}"


def _inspections(args: argparse.Namespace) -> _Inspections:
    from siteconfig import ConfigError, load_site

    try:
        config = load_site(args.config)
    except ConfigError as err:
        raise UserError(str(err)) from err
    url: str | None = args.collector_url
    if url is None and config.collector_api is not None:
        url = str(config.collector_api.url)
    if url is None:
        raise UserError(
            f"{args.config}: no collector API URL: add collector_api: {{url: ...}} "
            "or pass --collector-url"
        )
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--collector-url: expected http(s)://HOST[:PORT], got {url!r}")
    if not args.token:
        raise UserError("no technician token: pass --token or set SHELTERWATCH_TOKEN")
    return _Inspections(base_url=url.rstrip("/"), site_id=config.site_id, token=args.token)


def _inspect_start(args: argparse.Namespace) -> int:
    api = _inspections(args)
    body = {
        "site_id": api.site_id,
        "duration_min": args.duration_min,
        "technician": args.technician,
    }
    inspection = api.call("POST", "", body)
    print(
        f"inspection {inspection['id']} of {inspection['site_id']} started by "
        f"{inspection['technician']}, until {inspection['ends_at']}: "
        "triggers at this site are now test results, not incidents"
    )
    print(_checklist(inspection))
    return 0


def _inspect_status(args: argparse.Namespace) -> int:
    api = _inspections(args)
    found = api.call("GET", f"?site_id={quote(api.site_id)}")
    if not found:
        print(f"no inspection of {api.site_id} yet")
        return 1
    latest = found[0]
    print(
        f"inspection {latest['id']} of {latest['site_id']}: {latest['status']} "
        f"(by {latest['technician']}, {latest['started_at']} to {latest['ends_at']})"
    )
    print(_checklist(latest))
    return 0 if latest["status"] == "active" else 1


def _inspect_complete(args: argparse.Namespace) -> int:
    api = _inspections(args)
    found = api.call("GET", f"?site_id={quote(api.site_id)}")
    # The latest one, also once past its end: an overrun inspection still gets its report.
    if not found or found[0]["status"] == "completed":
        raise UserError(f"no inspection of {api.site_id} to complete: start one first")
    report = api.call("POST", f"/{found[0]['id']}/complete", {"notes": args.notes})
    print(f"inspection {report['id']} of {report['site_id']} completed")
    print(_checklist(report))
    return 0


def _checklist(inspection: dict[str, Any]) -> str:
    items: dict[str, dict[str, Any]] = inspection.get("items") or {}
    return "\n".join(
        f"  [{'x' if item.get('done') else ' '}] {name}" for name, item in sorted(items.items())
    )

"""One collector instance: MQTT ingest, the NOC API and the timers, in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import getpass
import logging
import os
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from clocks import Clock, jumped_within
from collector import datadir
from collector.alarms.rules import load_rules
from collector.app import create_app
from collector.ingest import IngestService
from collector.ingest.store import BatchStore
from collector.inspections.service import load_checklist
from collector.inventory.files import load_inventory, read_inventory
from collector.listeners import alarm_engine, alarm_listeners
from collector.notifications.settings import load_notification_settings
from collector.revisions.service import record_file_revisions
from collector.scheduler import Scheduler
from collector.settings import CollectorSettings
from collector.sla.contracts import load_contracts
from collector.storage import make_engine, make_session_factory
from collector.storage.locks import lock
from collector.storage.schema import create_schema
from collector.tickets.criticality import load_criticality_map
from protocol.acksig import read_key_file

log = logging.getLogger(__name__)

# The cyclic garbage collector at its defaults (a young collection every 700 allocations) took
# a third of the ingest writer's time: each batch keeps thousands of decoded messages and rows
# alive until its commit, so they kept being promoted and the old generations, with every
# object of the running collector, walked again and again. Measured with the writer alone on
# telemetry (SQLite, 2,000-message batches): 51 us a message at the defaults, 34 with these.
GC_THRESHOLDS = (50_000, 20, 20)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the collector owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def check_collector_data(settings: CollectorSettings) -> None:
    """Use the settings' data directory and load every file of it (and of the inventory):
    ``DataError`` / ``InventoryError`` name the file, the place in it and what is wrong."""
    datadir.use(settings.data_dir)
    load_contracts()
    load_criticality_map()
    load_rules()
    load_checklist()
    load_notification_settings()
    if settings.inventory_dir is not None:
        for path in sorted(settings.inventory_dir.glob("*.yaml")):
            read_inventory(path)


def prepare_database(
    db_url: str,
    *,
    inventory_dir: Path | None = None,
    revisions_by: str | None = None,
    now: datetime | None = None,
) -> sessionmaker[Session]:
    """Open the database, create missing tables, load the inventory files if given; with
    ``revisions_by``, record a revision of each data and inventory file that changed."""
    engine = make_engine(db_url)
    create_schema(engine)
    if revisions_by is not None and now is not None:
        with make_session_factory(engine)() as session:
            lock(session, "revisions")  # instances starting together record each change once
            _record_revisions(session, inventory_dir=inventory_dir, actor=revisions_by, now=now)
            session.commit()
    factory = make_session_factory(engine)
    if inventory_dir is not None:
        with factory() as session:
            # merge() is read-then-write: instances starting together load one after another.
            lock(session, "inventory")
            load_inventory(session, inventory_dir)
            session.commit()
    return factory


def _record_revisions(
    session: Session, *, inventory_dir: Path | None, actor: str, now: datetime
) -> None:
    data = datadir.data_dir()
    changed = record_file_revisions(
        session, kind="data_file", folder=data, files=datadir.FILES, actor=actor, now=now
    )
    if inventory_dir is not None:
        files = [p.relative_to(inventory_dir) for p in sorted(inventory_dir.glob("*.yaml"))]
        changed += record_file_revisions(
            session, kind="inventory_file", folder=inventory_dir, files=files, actor=actor, now=now
        )
    for revision in changed:
        log.info(
            "%s %s: new revision %s",
            revision.object_kind,
            revision.object_key,
            revision.sha256[:12],
        )


def _who() -> str:
    """Who started this collector: user and host, for the revisions it records."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def tune_garbage_collector() -> None:
    """Once started: what exists now (modules, compiled statements, schemas) is set apart from
    the collections for good, and young collections are rarer (see ``GC_THRESHOLDS``).
    Reference counting still frees nearly everything at once; only cycles wait longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run_collector(*, settings: CollectorSettings, clock: Clock, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set. An unreachable broker only makes /healthz not ready."""
    ack_secret = _ack_secret(settings.ack_secret_file)
    check_collector_data(settings)
    session_factory = prepare_database(
        settings.db_url,
        inventory_dir=settings.inventory_dir,
        revisions_by=f"collector {settings.instance_id} at start ({_who()})",
        now=clock.now(),
    )
    listeners = alarm_listeners()
    scheduler = Scheduler(
        engine=alarm_engine(listeners),
        will_grace_s=settings.will_grace_s,
        heartbeat_timeout_s=settings.heartbeat_timeout_s,
    )
    ingest = IngestService(
        broker_host=settings.broker_host,
        broker_port=settings.broker_port,
        instance_id=settings.instance_id,
        session_factory=session_factory,
        clock=clock,
        engine=alarm_engine(listeners),
        shared_group=settings.shared_group,
        username=settings.broker_username,
        password=settings.broker_password,
        ack_secret=ack_secret,
    )
    app = create_app(
        session_factory=session_factory,
        clock=clock,
        readiness=lambda: {"broker": ingest.ready},
        ingest_stats=lambda: ingest.stats,
        ingest_store=BatchStore(alarm_engine(listeners)),
    )
    server = _Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            lifespan="on",
        )
    )
    tune_garbage_collector()
    async with ingest:
        http = asyncio.create_task(server.serve(), name="http")
        timers = asyncio.create_task(
            _timers(
                session_factory, scheduler, clock, settings.timer_poll_s, ingest.watching_for_s
            ),
            name="timers",
        )
        stopping = asyncio.create_task(stop.wait(), name="stop")
        done, _ = await asyncio.wait({http, stopping}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        timers.cancel()
        stopping.cancel()
        await asyncio.gather(http, timers, stopping, return_exceptions=True)
        if http in done and http.exception() is not None:
            raise http.exception()  # type: ignore[misc]


def _ack_secret(path: Path | None) -> bytes | None:
    """The master secret acks are signed with, or None (said loudly: agents with a key will
    refuse every unsigned ack)."""
    if path is None:
        log.warning(
            "acks are NOT signed (no --ack-secret-file): agents enrolled with an ack key "
            "refuse them and keep re-sending"
        )
        return None
    secret = read_key_file(path)
    log.info("acks signed with the per-agent keys derived from %s", path)
    return secret


async def _timers(
    session_factory: sessionmaker[Session],
    scheduler: Scheduler,
    clock: Clock,
    poll_s: float,
    watching_for_s: Callable[[], float],
) -> None:
    def run_once() -> None:
        with session_factory() as session:
            skipped = jumped_within(clock, scheduler.heartbeat_timeout_s)
            scheduler.run(
                session, now=clock.now(), skipped_s=skipped, watching_for_s=watching_for_s()
            )
            session.commit()
        with session_factory() as session:
            scheduler.deliver(session, now=clock.now())
            session.commit()

    while True:
        try:
            # In a worker thread: deliveries and SQL must not block the API's event loop.
            await asyncio.to_thread(run_once)
        except Exception:
            # A failing timer run must not stop ingest or the API; it is retried next tick.
            log.exception("scheduled work failed; retrying in %.1f s", poll_s)
        await asyncio.sleep(poll_s)

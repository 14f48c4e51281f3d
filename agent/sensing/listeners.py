"""The site's listeners: SNMP traps and syslog, heard by their drivers, given a meaning by
evaluation, handed to the sink as alarm transitions.

A new configuration is applied as a transaction (``Listeners.apply``): its evaluators are
built, the sockets it needs are bound (a socket whose settings did not change is kept; one
whose address is reused is really closed first), and only then is anything swapped in. Any
failure leaves the running listeners as they were, sockets and meaning alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agent.evaluation import Expiries, SyslogEvaluator, TrapEvaluator, TrapSource, Unmapped
from agent.events import AlarmTransition, SensingSink
from agent.sensors.observations import SyslogMessage, TrapNotification
from agent.sensors.syslog import SyslogReceiver
from clocks import Clock
from protocol import ListenerHealth
from siteconfig import SiteConfig, SnmpDevice, SnmpProfile, SyslogListener, TrapListener

if TYPE_CHECKING:
    from agent.sensors.snmp.traps import TrapReceiver

log = logging.getLogger(__name__)


class _Receiver(Protocol):
    received: int
    rejected: int
    rejected_by: dict[str, int]

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: object) -> Any: ...


@dataclass
class _Bound:
    """A receiver bound for some settings (``key``) at an address."""

    key: object
    address: tuple[str, int]
    receiver: _Receiver
    open: Callable[[], Awaitable[_Receiver]]


class _Slot:
    """One listener's socket across reloads, and the counts of the receivers it closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bound: _Bound | None = None
        self.received_before = 0
        self.rejected_before = 0
        self.rejected_by_before: Counter[str] = Counter()
        # Where the last receiver listened (kept once closed: the counts are its too).
        self.address: tuple[str, int] | None = None

    def counts(self) -> tuple[int, int, Counter[str]]:
        """Passed on, rejected, and rejected by reason, since start (closed receivers too)."""
        receiver = self.receiver
        by = Counter(self.rejected_by_before)
        if receiver is None:
            return self.received_before, self.rejected_before, by
        by.update(receiver.rejected_by)
        return (
            self.received_before + receiver.received,
            self.rejected_before + receiver.rejected,
            by,
        )

    @property
    def receiver(self) -> _Receiver | None:
        """The receiver running now, if any."""
        return self.bound.receiver if self.bound is not None else None

    async def prepare(
        self,
        key: object,
        address: tuple[str, int] | None,
        open_: Callable[[], Awaitable[_Receiver]],
    ) -> _Change:
        """Bind what ``key`` needs (``address`` None: no listener); raises, with the running
        receiver untouched, when that cannot be done."""
        old = self.bound
        if old is not None and old.key == key:
            return _Change(self, keep=True)
        if address is None:
            return _Change(self, new=None)
        if old is not None and _overlap(old.address, address):
            # The same port with other settings (v3 users, communities, bind address): the
            # old socket must be closed before the port can be bound again.
            await self._close(old)
            self.bound = None
            try:
                receiver = await open_()
            except BaseException:
                await self._reopen(old)
                raise
            return _Change(self, new=_Bound(key, address, receiver, open_), closed_old=old)
        receiver = await open_()
        return _Change(self, new=_Bound(key, address, receiver, open_))

    async def aclose(self) -> None:
        """Close the running receiver."""
        if self.bound is not None:
            bound, self.bound = self.bound, None
            await self._close(bound)

    async def _close(self, bound: _Bound) -> None:
        self.received_before += bound.receiver.received
        self.rejected_before += bound.receiver.rejected
        self.rejected_by_before.update(bound.receiver.rejected_by)
        await bound.receiver.__aexit__(None, None, None)

    async def _reopen(self, old: _Bound) -> None:
        try:
            receiver = await old.open()
        except Exception:
            log.exception(
                "%s listener: cannot bind %s:%d again after a refused reload: not listening",
                self.name,
                *old.address,
            )
            return
        self.bound = _Bound(old.key, old.address, receiver, old.open)


@dataclass
class _Change:
    """What ``_Slot.prepare`` did, to be committed or undone."""

    slot: _Slot
    keep: bool = False
    new: _Bound | None = None
    closed_old: _Bound | None = None

    async def commit(self) -> None:
        """Swap the new receiver in; close the old one if still open."""
        if self.keep:
            return
        if self.slot.bound is not None:
            await self.slot.aclose()
        self.slot.bound = self.new
        if self.new is not None:
            port = getattr(self.new.receiver, "port", self.new.address[1])
            self.slot.address = (self.new.address[0], int(port))

    async def undo(self) -> None:
        """Close what was bound and put back what was closed."""
        if self.keep:
            return
        if self.new is not None:
            await self.new.receiver.__aexit__(None, None, None)
        if self.closed_old is not None:
            await self.slot._reopen(self.closed_old)


class Listeners:
    """The trap and syslog sockets a site file asks for, bound inside the running loop;
    ``apply`` a configuration, ``aclose`` at the end."""

    def __init__(
        self,
        *,
        sink: SensingSink,
        clock: Clock,
        is_active: Callable[[tuple[str, str, str]], bool] = lambda _: True,
    ) -> None:
        self._sink = sink
        self._clock = clock
        # Whether an alarm is still active (a poll may have cleared it before it expires).
        self._is_active = is_active
        self._expiries = Expiries()
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._traps = _Slot("snmp trap")
        self._syslog = _Slot("syslog")
        self._trap_evaluator: TrapEvaluator | None = None
        self._syslog_evaluator: SyslogEvaluator | None = None
        self._unmapped_traps: Counter[str] = Counter()

    @property
    def traps_rejected(self) -> int:
        """Notifications refused by the protocol (credentials, undecodable) or meaning nothing
        here (unknown sender, unmapped trap), since start."""
        _, rejected, _ = self._traps.counts()
        return rejected + sum(self._unmapped_traps.values())

    def health(self) -> list[ListenerHealth]:
        """Each listener's address and counts since start, for the heartbeat and the check."""
        out = []
        if self._traps.address is not None:
            passed, rejected, by = self._traps.counts()
            unmapped = sum(self._unmapped_traps.values())
            out.append(
                ListenerHealth(
                    kind="snmp_traps",
                    bind=self._traps.address[0],
                    port=self._traps.address[1],
                    received=passed + rejected,
                    accepted=passed - unmapped,
                    rejected=dict(by + self._unmapped_traps),
                )
            )
        if self._syslog.address is not None:
            passed, rejected, by = self._syslog.counts()
            out.append(
                ListenerHealth(
                    kind="syslog",
                    bind=self._syslog.address[0],
                    port=self._syslog.address[1],
                    received=passed + rejected,
                    accepted=passed,
                    rejected=dict(by),
                )
            )
        return out

    @property
    def trap_port(self) -> int | None:
        """The bound trap port, if listening."""
        receiver = self._traps.receiver
        return receiver.port if receiver is not None else None  # type: ignore[attr-defined]

    @property
    def syslog_port(self) -> int | None:
        """The bound syslog port, if listening."""
        receiver = self._syslog.receiver
        return receiver.port if receiver is not None else None  # type: ignore[attr-defined]

    async def apply(self, config: SiteConfig) -> None:
        """Listen as ``config`` says, or raise and keep listening as before."""
        trap_evaluator = _trap_evaluator(config)
        syslog_evaluator = (
            SyslogEvaluator(config.syslog.patterns) if config.syslog is not None else None
        )
        traps = await self._traps.prepare(
            _trap_key(config.traps),
            None if config.traps is None else (config.traps.bind, config.traps.port),
            self._trap_opener(config.traps),
        )
        try:
            syslog = await self._syslog.prepare(
                _syslog_key(config.syslog),
                None if config.syslog is None else (config.syslog.bind, config.syslog.port),
                self._syslog_opener(config.syslog),
            )
        except BaseException:
            await traps.undo()
            raise
        # Nothing below can fail: the swap.
        await traps.commit()
        await syslog.commit()
        self._trap_evaluator, self._syslog_evaluator = trap_evaluator, syslog_evaluator

    async def aclose(self) -> None:
        """Close both sockets."""
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        await self._traps.aclose()
        await self._syslog.aclose()

    def _trap_opener(self, settings: TrapListener | None) -> Callable[[], Awaitable[_Receiver]]:
        async def open_() -> _Receiver:
            assert settings is not None
            # Imported here: pysnmp's engine costs memory a site without traps does not pay.
            from agent.sensors.snmp.traps import TrapReceiver

            receiver: TrapReceiver = TrapReceiver(settings, on_notification=self._notification)
            return await receiver.__aenter__()

        return open_

    def _syslog_opener(self, settings: SyslogListener | None) -> Callable[[], Awaitable[_Receiver]]:
        async def open_() -> _Receiver:
            assert settings is not None
            receiver = SyslogReceiver(
                bind=settings.bind, port=settings.port, on_message=self._message
            )
            return await receiver.__aenter__()

        return open_

    def _notification(self, notification: TrapNotification) -> None:
        if self._trap_evaluator is None:
            return  # bound for a reload that was then refused: heard by nobody
        outcome = self._trap_evaluator.feed(notification, now=self._clock.now())
        if isinstance(outcome, Unmapped):
            self._unmapped_traps[outcome.category] += 1
            log.warning("snmp trap from %s rejected: %s", notification.host, outcome.reason)
            return
        self._heard(outcome, self._trap_evaluator.expire_s(outcome))

    def _message(self, message: SyslogMessage) -> None:
        if self._syslog_evaluator is None:
            return
        for transition in self._syslog_evaluator.feed(message, now=self._clock.now()):
            self._heard(transition, self._syslog_evaluator.expire_s(transition))

    def _heard(self, transition: AlarmTransition, expire_s: float | None) -> None:
        self._sink.transition(transition)
        self._expiries.follow(transition, expire_s=expire_s, mono=self._clock.monotonic())
        self._arm()

    def _arm(self) -> None:
        """Wake up when the next self-clearing alarm is due."""
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        due = self._expiries.next_due()
        if due is not None:
            delay = max(0.0, due - self._clock.monotonic())
            self._expiry_timer = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        self._expiry_timer = None
        now, mono = self._clock.now(), self._clock.monotonic()
        for clear in self._expiries.expired(mono=mono, now=now):
            identity = (clear.equipment_id, clear.point, clear.alarm_type)
            if self._is_active(identity):  # not already cleared by a poll or a notice
                self._sink.transition(clear)
        self._arm()


def _overlap(old: tuple[str, int], new: tuple[str, int]) -> bool:
    # Port 0 binds a fresh port each time: no overlap.
    return old[1] == new[1] != 0


def _trap_evaluator(config: SiteConfig) -> TrapEvaluator | None:
    if config.traps is None:
        return None
    return TrapEvaluator(
        [
            TrapSource(device=d, profile=p)
            for d in config.devices
            if isinstance(d, SnmpDevice) and isinstance(p := config.profile_of(d), SnmpProfile)
        ],
        addresses=config.traps.sources,
    )


def _trap_key(settings: TrapListener | None) -> object:
    # What the socket and the SNMP engine depend on; which device sent what is evaluation's.
    return None if settings is None else settings.model_copy(update={"sources": {}})


def _syslog_key(settings: SyslogListener | None) -> object:
    # Patterns are evaluation's: the socket depends on the address alone.
    return None if settings is None else (settings.bind, settings.port)

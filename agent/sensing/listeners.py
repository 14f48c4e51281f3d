"""The site's listeners: SNMP traps and syslog, heard by their drivers, given a meaning by
evaluation, handed to the sink as alarm transitions."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from agent.evaluation import SyslogEvaluator, TrapEvaluator, TrapSource, Unmapped
from agent.events import SensingSink
from agent.sensors.observations import SyslogMessage, TrapNotification
from agent.sensors.syslog import SyslogReceiver
from clocks import Clock
from siteconfig import SiteConfig, SnmpDevice, SnmpProfile

if TYPE_CHECKING:
    from agent.sensors.snmp.traps import TrapReceiver

log = logging.getLogger(__name__)


class Listeners:
    """Async context manager: the trap and syslog sockets a site file asks for, bound inside
    the running loop."""

    def __init__(self, config: SiteConfig, *, sink: SensingSink, clock: Clock) -> None:
        self._config = config
        self._sink = sink
        self._clock = clock
        self._stack = contextlib.AsyncExitStack()
        self._traps: TrapReceiver | None = None
        self._trap_evaluator: TrapEvaluator | None = None
        self._syslog: SyslogReceiver | None = None
        self._syslog_evaluator: SyslogEvaluator | None = None
        self._unmapped_traps = 0

    @property
    def traps_rejected(self) -> int:
        """Notifications refused by the protocol (credentials, undecodable) or meaning nothing
        here (unknown sender, unmapped trap)."""
        refused = self._traps.rejected if self._traps is not None else 0
        return refused + self._unmapped_traps

    async def __aenter__(self) -> Listeners:
        config = self._config
        try:
            if config.traps is not None:
                # Imported here: pysnmp's engine costs memory a site without traps does not pay.
                from agent.sensors.snmp.traps import TrapReceiver

                self._trap_evaluator = TrapEvaluator(
                    [
                        TrapSource(device=d, profile=p)
                        for d in config.devices
                        if isinstance(d, SnmpDevice)
                        and isinstance(p := config.profile_of(d), SnmpProfile)
                    ],
                    addresses=config.traps.sources,
                )
                self._traps = await self._stack.enter_async_context(
                    TrapReceiver(config.traps, on_notification=self._notification)
                )
            if config.syslog is not None:
                self._syslog_evaluator = SyslogEvaluator(config.syslog.patterns)
                self._syslog = await self._stack.enter_async_context(
                    SyslogReceiver(
                        bind=config.syslog.bind, port=config.syslog.port, on_message=self._message
                    )
                )
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def _notification(self, notification: TrapNotification) -> None:
        assert self._trap_evaluator is not None
        outcome = self._trap_evaluator.feed(notification, now=self._clock.now())
        if isinstance(outcome, Unmapped):
            self._unmapped_traps += 1
            log.warning("snmp trap from %s rejected: %s", notification.host, outcome.reason)
            return
        self._sink.transition(outcome)

    def _message(self, message: SyslogMessage) -> None:
        assert self._syslog_evaluator is not None
        for transition in self._syslog_evaluator.feed(message, now=self._clock.now()):
            self._sink.transition(transition)

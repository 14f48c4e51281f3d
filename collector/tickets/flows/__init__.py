"""Alarm -> ticket: what the alarm engine's changes do to tickets, inside its transaction.

``listener.TicketAlarmListener`` dispatches each change to its flow: ``raised`` (open, or a
recurrence), ``cleared`` (re-supervision), ``symptoms`` (suppressed by a cause), ``storms``
(grouped under a generic incident), ``flapping``; ``identity`` finds an alarm's ticket.
"""

from collector.tickets.flows.listener import TicketAlarmListener

__all__ = ["TicketAlarmListener"]

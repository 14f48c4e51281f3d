"""The agent's durable outbox (SQLite WAL): nothing is deleted before the collector's ack."""

from agent.buffer.bootcount import next_boot
from agent.buffer.outbox import Outbox, OutboxItem
from agent.buffer.settings import OutboxSettings

__all__ = ["Outbox", "OutboxItem", "OutboxSettings", "next_boot"]

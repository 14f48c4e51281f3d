"""The agent's durable outbox (SQLite WAL): nothing is deleted before the collector's ack."""

from agent.buffer.bootcount import next_boot
from agent.buffer.errors import StorageError
from agent.buffer.outbox import Outbox, OutboxItem, Recovery

__all__ = ["Outbox", "OutboxItem", "Recovery", "StorageError", "next_boot"]

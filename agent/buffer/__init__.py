"""The agent's durable outbox (SQLite WAL): nothing is deleted before the collector's ack."""

from agent.buffer.settings import OutboxSettings

__all__ = ["OutboxSettings"]

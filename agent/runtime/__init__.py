"""The agent process: sensing -> durable outbox -> MQTT link, with hot reload."""

from agent.runtime.agent import AGENT_VERSION, AgentFailed, AgentRuntime

__all__ = ["AGENT_VERSION", "AgentFailed", "AgentRuntime"]

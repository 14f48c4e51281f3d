"""The shelter's backhaul as a test sees it: a network namespace the agent runs in, reaching the
broker only through a userspace relay that can black-hole, cut one way, or slow the link."""

from simulators.network.namespace import NetNamespace, NetnsUnavailable, netns_unavailable_reason
from simulators.network.relay import ConnectionRecord, LinkRelay
from simulators.network.spy import DeliverySpy

__all__ = [
    "ConnectionRecord",
    "DeliverySpy",
    "LinkRelay",
    "NetNamespace",
    "NetnsUnavailable",
    "netns_unavailable_reason",
]

"""A network namespace joined to this one by a veth pair, for a process that must reach the
broker through the test's relay only (no loopback shortcut around the faults).

Needs root and iproute2 (``ip netns``), as CI has; ``netns_unavailable_reason()`` says why not
otherwise, for a visible skip.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence

# Test subnets are /30s carved from here; a subnet already on an interface is skipped.
POOL = ipaddress.IPv4Network("10.201.0.0/16")


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be created here."""


def netns_unavailable_reason() -> str | None:
    """Why a namespace cannot be made on this machine, or None when it can."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs the suite as root)"
    probe = f"swprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class NetNamespace:
    """``ip netns`` + a veth pair: ``host_ip`` on this side, ``ns_ip`` inside."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.name = f"sw-{tag}"
        # Interface names hold 15 characters.
        self._host_if = f"swh{tag}"
        self._ns_if = f"swn{tag}"
        self.host_ip = ""
        self.ns_ip = ""
        self._made = False

    def create(self) -> None:
        """Make the namespace and its link; raise NetnsUnavailable with the reason if not."""
        subnet = _free_subnet()
        host, inside = (str(a) for a in list(subnet.hosts())[:2])
        steps: list[Sequence[str]] = [
            ["ip", "netns", "add", self.name],
            ["ip", "link", "add", self._host_if, "type", "veth", "peer", "name", self._ns_if],
            ["ip", "link", "set", self._ns_if, "netns", self.name],
            ["ip", "addr", "add", f"{host}/{subnet.prefixlen}", "dev", self._host_if],
            ["ip", "link", "set", self._host_if, "up"],
            self.wrap(["ip", "addr", "add", f"{inside}/{subnet.prefixlen}", "dev", self._ns_if]),
            self.wrap(["ip", "link", "set", self._ns_if, "up"]),
            self.wrap(["ip", "link", "set", "lo", "up"]),
        ]
        self._made = True
        for step in steps:
            done = subprocess.run(list(step), capture_output=True, text=True)
            if done.returncode != 0:
                self.delete()
                raise NetnsUnavailable(f"{' '.join(step)}: {done.stderr.strip()}")
        self.host_ip, self.ns_ip = host, inside

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def delete(self) -> None:
        """Remove the namespace and its link (processes inside should be stopped first)."""
        if not self._made:
            return
        subprocess.run(["ip", "link", "del", self._host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        self._made = False

    def __enter__(self) -> NetNamespace:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 of the pool that no interface of this machine uses."""
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    used = [
        ipaddress.IPv4Interface(word).network
        for line in shown.stdout.splitlines()
        for word in line.split()
        if "/" in word and word[0].isdigit()
    ]
    subnets = list(POOL.subnets(new_prefix=30))
    for _ in range(100):
        candidate = subnets[secrets.randbelow(len(subnets))]
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise NetnsUnavailable(f"no free /30 left in {POOL}")

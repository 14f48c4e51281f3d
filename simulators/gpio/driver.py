"""Client side of the GPIO socket: set contact levels of an agent from another process."""

from __future__ import annotations

import socket
from pathlib import Path


class GpioDriverError(RuntimeError):
    """The GPIO socket refused a command or could not be reached."""


class GpioDriver:
    """Drives the pins of one agent through its ``SocketPinFactory``."""

    def __init__(self, socket_path: Path, *, timeout_s: float = 5.0) -> None:
        self.socket_path = socket_path
        self._timeout = timeout_s

    def set(self, pin: int, level: bool) -> None:
        """Drive BCM ``pin`` high (True) or low (False)."""
        self._call(f"SET {pin} {int(level)}")

    def get(self, pin: int) -> bool | None:
        """Current level of a pin (None if never set nor opened)."""
        answer = self._call(f"GET {pin}")
        return None if answer == "?" else answer == "1"

    def _call(self, line: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self._timeout)
                sock.connect(str(self.socket_path))
                sock.sendall(line.encode() + b"\n")
                answer = sock.makefile("r").readline().strip()
        except OSError as err:
            raise GpioDriverError(f"GPIO socket {self.socket_path}: {err}") from err
        if answer.startswith("ERR"):
            raise GpioDriverError(f"GPIO socket {self.socket_path}: {answer}")
        return answer

"""A gpiozero pin factory whose input levels are set from another process over a Unix socket.

Selected in the agent's environment with ``GPIOZERO_PIN_FACTORY=shelterwatch_sim`` (registered
as a gpiozero entry point) and ``SHELTERWATCH_GPIO_SOCKET=/path/to.sock``. The agent code is
the same as on a Raspberry Pi; only gpiozero's factory differs.

Wire protocol (one line each way): ``SET <bcm> <0|1>`` -> ``OK``; ``GET <bcm>`` -> ``0``/``1``.
``SHELTERWATCH_GPIO_INITIAL="17=0,27=1"`` gives levels before the simulator first speaks, so an
agent does not see a door "open" for an instant at start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

log = logging.getLogger(__name__)

SOCKET_ENV = "SHELTERWATCH_GPIO_SOCKET"
INITIAL_ENV = "SHELTERWATCH_GPIO_INITIAL"


def parse_levels(text: str) -> dict[int, bool]:
    """Parse ``"17=0,27=1"`` into {17: False, 27: True}."""
    levels: dict[int, bool] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        pin, _, level = part.partition("=")
        if not pin.isdigit() or level not in ("0", "1"):
            raise ValueError(f"{INITIAL_ENV}: bad entry {part!r}, expected PIN=0|1")
        levels[int(pin)] = level == "1"
    return levels


class SocketPin(MockPin):  # type: ignore[misc]
    """A mock pin whose level, once set from outside, survives gpiozero setting the pull."""

    def _set_pull(self, value: str) -> None:
        # A mock pin drives itself to its pull when configured; the wired contact wins.
        super()._set_pull(value)
        level = self.factory.external_level(_bcm(self))
        if level is not None:
            _drive(self, level)


class SocketPinFactory(MockFactory):  # type: ignore[misc]
    """Mock pins whose levels a simulator drives through a Unix socket."""

    def __init__(self, socket_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(pin_class=SocketPin, **kwargs)
        path = socket_path or os.environ.get(SOCKET_ENV)
        if not path:
            raise ValueError(f"set {SOCKET_ENV} to the Unix socket the GPIO simulator talks to")
        self._levels = parse_levels(os.environ.get(INITIAL_ENV, ""))
        self._lock = threading.Lock()
        self._path = Path(path)
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self._path))
        self._server.listen(8)
        self._thread = threading.Thread(target=self._serve, name="gpio-socket", daemon=True)
        self._thread.start()

    def external_level(self, bcm: int) -> bool | None:
        """The level the simulator set for a pin, if any."""
        with self._lock:
            return self._levels.get(bcm)

    def set_level(self, bcm: int, level: bool) -> None:
        """Drive an input high or low (also before the agent has opened it)."""
        with self._lock:
            self._levels[bcm] = level
            pins = [p for p in self.pins.values() if _bcm(p) == bcm]
        for pin in pins:
            _drive(pin, level)

    def get_level(self, bcm: int) -> bool | None:
        """Current level of a pin the agent opened, else the level set for it."""
        with self._lock:
            pins = [p for p in self.pins.values() if _bcm(p) == bcm]
            if pins:
                return bool(pins[0].state)
            return self._levels.get(bcm)

    def close(self) -> None:
        """Stop serving and remove the socket."""
        with contextlib.suppress(OSError):
            self._server.close()
        with contextlib.suppress(OSError):
            self._path.unlink()
        super().close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn, conn.makefile("rw") as stream:
                for line in stream:
                    stream.write(self._handle(line.split()) + "\n")
                    stream.flush()

    def _handle(self, words: list[str]) -> str:
        try:
            if len(words) == 3 and words[0] == "SET" and words[2] in ("0", "1"):
                self.set_level(int(words[1]), words[2] == "1")
                return "OK"
            if len(words) == 2 and words[0] == "GET":
                level = self.get_level(int(words[1]))
                return "?" if level is None else str(int(level))
        except ValueError as err:
            return f"ERR {err}"
        return "ERR expected 'SET <pin> <0|1>' or 'GET <pin>'"


def _bcm(pin: Any) -> int:
    name = str(pin.info.name)
    return int(name[4:]) if name.startswith("GPIO") and name[4:].isdigit() else -1


def _drive(pin: Any, level: bool) -> None:
    if level:
        pin.drive_high()
    else:
        pin.drive_low()

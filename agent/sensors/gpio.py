"""GPIO contacts through gpiozero; the pin factory is gpiozero's choice (env GPIOZERO_PIN_FACTORY).

On a Raspberry Pi that is the real pins; off a Pi the simulators' socket factory, so the agent
itself has no simulator-only path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gpiozero import DigitalInputDevice

log = logging.getLogger(__name__)


class ContactReader:
    """Reads dry contacts; ``closed`` is True when the switch closes the circuit."""

    def __init__(self, pins: Mapping[str, int], *, pull_up: Mapping[str, bool]) -> None:
        self._devices = {
            point: DigitalInputDevice(pin, pull_up=pull_up[point]) for point, pin in pins.items()
        }

    def read(self) -> dict[str, bool]:
        """Current switch position of every point (closed=True)."""
        # With a pull-up, a closed switch pulls the pin low, which gpiozero reports as active.
        return {point: bool(device.is_active) for point, device in self._devices.items()}

    def close(self) -> None:
        """Release the pins."""
        for device in self._devices.values():
            device.close()

"""Driver errors, translated at the protocol boundary."""


class DeviceError(Exception):
    """A device did not answer, or answered something unusable."""

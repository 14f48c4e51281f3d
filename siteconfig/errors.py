"""Configuration errors: one line naming the file, the path inside it and the reason."""

from __future__ import annotations


class ConfigError(ValueError):
    """A site or profile file that cannot be used."""

    def __init__(self, file: str, path: str, reason: str) -> None:
        super().__init__(f"{file}: {path}: {reason}")
        self.file = file
        self.path = path
        self.reason = reason

"""``shelterwatch agent validate``: check site and profile files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from siteconfig.errors import ConfigError
from siteconfig.site import load_profile, load_site


def validate_files(paths: Sequence[Path]) -> list[str]:
    """One error line per invalid file (empty when all are valid)."""
    errors = []
    for path in paths:
        try:
            if _is_profile(path):
                load_profile(path)
            else:
                load_site(path)
        except ConfigError as err:
            errors.append(str(err))
    return errors


def _is_profile(path: Path) -> bool:
    # Profiles declare a ``kind``; site files an ``agent_id``.
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(raw, dict) and "kind" in raw and "agent_id" not in raw

"""The collector's data: contracts, rules and inventory, files in one data directory.

These stay files (an operator edits them, a review reads them), but the collector finds them
through its settings (``CollectorSettings.data_dir``, ``collector run --data``), never through
its own source tree, and checks every one when it starts: a broken file stops it with one
line naming the file, the place in it and what is wrong. The shipped directory,
``collector_data/``, holds the reference contracts and rules and the demo inventory.

Each feature loads its own file with ``load_yaml`` (validated by its own model) and caches it
by path; ``use`` says which directory the running collector reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

SHIPPED_DATA_DIR = Path(__file__).resolve().parents[1] / "collector_data"
# The files of a data directory (relative paths), which ``collector.data_check`` loads.
CONTRACTS = Path("contracts/contracts.yaml")
ALARM_CRITICALITY = Path("contracts/alarm_criticality.yaml")
ALARM_RULES = Path("rules/alarm_rules.yaml")
INSPECTION_CHECKLIST = Path("rules/inspection_checklist.yaml")
NOTIFICATIONS = Path("rules/notifications.yaml")
FILES = (CONTRACTS, ALARM_CRITICALITY, ALARM_RULES, INSPECTION_CHECKLIST, NOTIFICATIONS)
# The demo's inventory (an inventory is given apart: ``collector run --inventory``).
DEMO_INVENTORY_DIR = SHIPPED_DATA_DIR / "inventory"

_current = SHIPPED_DATA_DIR
Model = TypeVar("Model", bound=BaseModel)


class DataError(ValueError):
    """A data file the collector cannot use: ``file: where: reason``."""

    def __init__(self, path: Path, where: str, reason: str) -> None:
        super().__init__(f"{path}: {where}: {reason}")
        self.path = path
        self.where = where
        self.reason = reason


def use(directory: Path) -> None:
    """Read the collector's data from ``directory`` from now on (set once, at start)."""
    global _current
    _current = directory


def data_dir() -> Path:
    """The data directory in use."""
    return _current


def data_path(relative: Path) -> Path:
    """A file of the data directory in use."""
    return _current / relative


def load_yaml(path: Path, model: type[Model], *, empty_ok: bool = False) -> Model:
    """Parse and validate one data file; ``DataError`` names the file, the place and why."""
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise DataError(path, "(file)", "no such file") from err
    except OSError as err:
        raise DataError(path, "(file)", f"cannot read: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise DataError(path, where, f"not YAML: {getattr(err, 'problem', err)}") from err
    if raw is None and empty_ok:
        raw = {}
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise DataError(path, where, first["msg"]) from err

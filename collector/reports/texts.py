"""What a person reads in a report, from the one catalogue (``collector.i18n``, keys
``report.*``): French first, English on request.

Codes (states, criticalities, ticket kinds) are shown by their name in the caller's language;
one the catalogue does not know is shown as its code rather than hidden.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from collector.i18n import MESSAGES, Language
from collector.i18n import text as catalogue_text

__all__ = ["ReportTable", "label", "month_name", "text"]


class ReportTable(StrEnum):
    """The tables of the monthly report, one CSV file each."""

    TICKETS = "tickets"
    SUMMARY = "summary"
    SITES = "sites"


def text(key: str, lang: Language, /, **fields: Any) -> str:
    """The catalogue text ``report.<key>`` in ``lang``."""
    return catalogue_text(f"report.{key}", lang, **fields)


def label(code: str, lang: Language) -> str:
    """The readable name of a state, criticality or ticket kind (the code if unknown)."""
    key = f"report.label.{code}"
    return catalogue_text(key, lang) if key in MESSAGES else code


def month_name(label: str, lang: Language) -> str:
    """``2026-03`` as people write it: ``mars 2026`` (``March 2026``)."""
    year, month = label.split("-")
    return f"{text(f'month.{month}', lang)} {year}"

"""What the reports refuse: a period the caller asked for that cannot be a period."""

from __future__ import annotations


class PeriodError(ValueError):
    """A month, date or period that cannot be reported on; the message names the parameter."""

"""Which build runs: ``shelterwatch_build_info{version}`` (the process figures come from
``prometheus_client``'s own process and platform collectors)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


@cache
def build_version() -> str:
    """The installed shelterwatch version, or ``unknown`` when run from a bare source tree."""
    try:
        return version("shelterwatch")
    except PackageNotFoundError:
        return "unknown"


class BuildInfo(Collector):
    """Always 1, labelled with the version. Cost: none (read once per process)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The one series."""
        info = GaugeMetricFamily(
            "shelterwatch_build_info",
            "Version du collecteur en service / Collector version running",
            labels=["version"],
        )
        info.add_metric([build_version()], 1)
        yield info

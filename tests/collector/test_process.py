"""The collector process's own set-up."""

from __future__ import annotations

import gc

from collector.process import GC_THRESHOLDS, tune_garbage_collector


def test_once_started_the_collector_freezes_what_exists_and_collects_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 10_000  # the modules and what they built
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

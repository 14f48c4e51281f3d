"""A data or inventory file whose content changed gets a revision (who, when, hash, diff) when
the collector starts; an unchanged one does not."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from clocks import ManualClock
from collector import datadir
from collector.datadir import SHIPPED_DATA_DIR
from collector.process import prepare_database
from collector.revisions.models import Revision


@pytest.fixture
def folders(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A copy of the shipped data directory (in use), and of the demo inventory."""
    data = tmp_path / "data"
    shutil.copytree(SHIPPED_DATA_DIR, data, ignore=shutil.ignore_patterns("inventory"))
    inventory = tmp_path / "inventory"
    shutil.copytree(SHIPPED_DATA_DIR / "inventory", inventory)
    datadir.use(data)
    try:
        yield data, inventory
    finally:
        datadir.use(SHIPPED_DATA_DIR)


def _start(db: str, inventory: Path, *, by: str, clock: ManualClock) -> list[dict[str, Any]]:
    """What a collector start records; every revision so far."""
    factory = prepare_database(db, inventory_dir=inventory, revisions_by=by, now=clock.now())
    with factory() as session:
        rows = [
            {c: getattr(r, c) for c in ("object_kind", "object_key", "sha256", "previous_sha256")}
            | {"actor": r.actor, "diff": r.diff, "at": r.at}
            for r in session.scalars(select(Revision).order_by(Revision.id))
        ]
    factory.kw["bind"].dispose()
    return rows


def test_each_start_records_what_changed_and_only_that(
    tmp_path: Path, clock: ManualClock, folders: tuple[Path, Path]
) -> None:
    data, inventory = folders
    db = f"sqlite:///{tmp_path / 'c.db'}"
    first = _start(db, inventory, by="ops@box", clock=clock)
    assert {(r["object_kind"], r["object_key"]) for r in first} == {
        *(("data_file", f.as_posix()) for f in datadir.FILES),
        ("inventory_file", "demo.yaml"),
    }
    assert all(r["previous_sha256"] is None and r["diff"] == "" for r in first)
    assert {r["actor"] for r in first} == {"ops@box"}
    # Started again with nothing changed: nothing recorded.
    clock.advance(hours=1)
    assert len(_start(db, inventory, by="ops@box", clock=clock)) == len(first)
    # One contract file edited: one revision, chained to the last, with its diff.
    contracts = data / "contracts" / "contracts.yaml"
    before = contracts.read_text()
    contracts.write_text(before + "# GTR of the premium contract agreed 2026-12-07\n")
    after = _start(db, inventory, by="j.doe@noc", clock=clock)
    assert len(after) == len(first) + 1
    new = after[-1]
    assert (new["object_kind"], new["object_key"], new["actor"]) == (
        "data_file",
        "contracts/contracts.yaml",
        "j.doe@noc",
    )
    assert new["previous_sha256"] == hashlib.sha256(before.encode()).hexdigest()
    assert new["at"] == clock.now()
    assert "+# GTR of the premium contract agreed 2026-12-07" in new["diff"]

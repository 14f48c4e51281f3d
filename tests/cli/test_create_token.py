"""``shelterwatch collector create-token --expires-in-hours``: technician tokens that expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cli.main import main
from collector.api.auth import principal_for_token
from collector.api.auth_models import ApiUser
from collector.process import prepare_database


def test_a_token_with_an_expiry_stops_working_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    argv = ["collector", "create-token", "--db", db, "--name", "j.martin", "--role", "technician"]
    before = datetime.now(UTC)
    assert main([*argv, "--expires-in-hours", "12"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert out.err.startswith("expires at ")
    factory = prepare_database(db)
    with factory() as session:
        user = session.scalars(select(ApiUser)).one()
        assert user.expires_at is not None
        expires = user.expires_at
        assert before + timedelta(hours=12) <= expires <= datetime.now(UTC) + timedelta(hours=12)
        hour_11 = principal_for_token(session, token=token, now=before + timedelta(hours=11))
        assert hour_11 is not None and hour_11.role.value == "technician"
        assert principal_for_token(session, token=token, now=expires) is None
    factory.kw["bind"].dispose()


def test_a_non_positive_expiry_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    argv = ["collector", "create-token", "--db", db, "--name", "x", "--role", "technician"]
    assert main([*argv, "--expires-in-hours", "0"]) == 2
    assert capsys.readouterr().err == (
        "shelterwatch: error: --expires-in-hours must be more than 0\n"
    )
    assert list(tmp_path.iterdir()) == []

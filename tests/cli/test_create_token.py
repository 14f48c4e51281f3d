"""``shelterwatch collector create-token``: technician tokens that expire; a user that cannot be
created is one line and exit 2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cli.main import main
from collector.identity.models import ApiUser
from collector.identity.tokens import principal_for_token
from collector.inventory.models import Client
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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--name", "alpha", "--role", "client", "--client-id", "op-nowhere"],
            "no client 'op-nowhere': add it to the inventory first",
        ),
        (["--name", "noc-1", "--role", "noc"], "a user named 'noc-1' already exists"),
        (
            ["--name", "x", "--role", "technician", "--client-id", "op-alpha"],
            "--client-id is only for --role client",
        ),
    ],
)
def test_a_refused_user_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    factory = prepare_database(db)
    with factory() as session:
        session.add(Client(client_id="op-alpha", name="Alpha"))
        session.commit()
    factory.kw["bind"].dispose()
    create = ["collector", "create-token", "--db", db]
    assert main([*create, "--name", "noc-1", "--role", "noc"]) == 0
    assert main([*create, "--name", "alpha", "--role", "client", "--client-id", "op-alpha"]) == 0
    capsys.readouterr()
    assert main([*create, *argv]) == 2
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", f"shelterwatch: error: {message}\n")
